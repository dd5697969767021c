"""``python -m mwaa_iac.local.emulator``: run the MWAA emulator as a process (the stack starts it).

Builds the runtime (``--runtime module:Class``, ``path/to/file.py:Class`` or ``airflow``), loads the
persisted environments from ``--state-dir``, serves on 127.0.0.1:``--port`` and, when
``--moto-endpoint`` is given, publishes SchedulerHeartbeat metrics there. SIGTERM/SIGINT stop the
server and call ``runtime.shutdown()`` (data is kept).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from mwaa_iac.local.emulator.background import HeartbeatPublisher
from mwaa_iac.local.emulator.models import MwaaBackend
from mwaa_iac.local.emulator.persistence import EnvironmentStore
from mwaa_iac.local.emulator.resources import AwsResources
from mwaa_iac.local.emulator.server import create_app, serve
from mwaa_iac.local.runtime.base import MWAA_SYNC_INTERVAL

log = logging.getLogger("mwaa_iac.local.emulator")

RUNTIME_ALIASES = {"airflow": "mwaa_iac.local.runtime.airflow:AirflowRuntime"}


def load_runtime_class(spec: str) -> type:
    """``module:Class``, ``path/to/file.py:Class`` or an alias (``airflow``) → the class."""
    spec = RUNTIME_ALIASES.get(spec, spec)
    target, sep, attribute = spec.rpartition(":")
    if not sep or not target or not attribute:
        raise ValueError(f"runtime {spec!r} is not of the form module:Class")
    if target.endswith(".py"):
        path = Path(target).resolve()
        module_spec = importlib.util.spec_from_file_location(f"_mwaa_runtime_{path.stem}", path)
        if module_spec is None or module_spec.loader is None:
            raise ValueError(f"cannot load runtime module from {path}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_spec.name] = module
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    return getattr(module, attribute)


def runtime_aws_env(moto_endpoint: str | None, mwaa_endpoint: str, region: str) -> dict[str, str]:
    """What the environments' processes need to reach the local AWS (handed to the runtime)."""
    env = {
        "AWS_ENDPOINT_URL_MWAA": mwaa_endpoint,
        "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }
    if moto_endpoint:
        env["AWS_ENDPOINT_URL"] = moto_endpoint
    return env


class _DeferredApp:
    """A WSGI app that answers 503 until the real one is set."""

    def __init__(self) -> None:
        self.app: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if self.app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"starting"]
        return self.app(environ, start_response)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mwaa_iac.local.emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--state-dir", type=Path, required=True, help="records go to STATE_DIR/emulator")
    parser.add_argument("--moto-endpoint", default=None, help="moto server URL (for metrics and the runtime)")
    parser.add_argument("--runtime", default="airflow", help="module:Class, file.py:Class or 'airflow'")
    parser.add_argument(
        "--runtime-dir", type=Path, default=None, help="runtime state (default STATE_DIR/runtime)"
    )
    parser.add_argument("--venv-cache", type=Path, default=None, help="passed to the runtime as venv_cache")
    parser.add_argument("--region", default="us-east-1", help="region for unsigned requests")
    parser.add_argument(
        "--stretch", type=float, default=0.0, help="minimum seconds in each transitional status"
    )
    parser.add_argument("--heartbeat-interval", type=float, default=15.0, help="seconds between heartbeats")
    parser.add_argument(
        "--sync-interval",
        type=float,
        default=MWAA_SYNC_INTERVAL,
        help="seconds between syncs of each DAG-folder copy from S3 (MWAA: 30; 0: off)",
    )
    parser.add_argument(
        "--restart-delay",
        type=float,
        default=None,
        help="seconds a crashed Airflow component stays down before the runtime starts it again, as MWAA "
        "replaces a failed container (default: $MWAA_IAC_LOCAL_RESTART_DELAY, else the runtime's own)",
    )
    parser.add_argument("--port-file", type=Path, default=None, help="write the bound port here once serving")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    state_dir: Path = args.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    runtime_dir = (args.runtime_dir or state_dir / "runtime").resolve()
    runtime_dir.mkdir(parents=True, exist_ok=True)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    # Bind first so the runtime can be told the emulator's own URL; answer 503 until ready.
    deferred = _DeferredApp()
    server = serve(deferred, args.port)
    aws_env = runtime_aws_env(args.moto_endpoint, server.url, args.region)
    runtime_class = load_runtime_class(args.runtime)
    kwargs: dict[str, object] = {"sync_interval": args.sync_interval}
    if args.venv_cache:
        kwargs["venv_cache"] = args.venv_cache
    if args.restart_delay is not None:
        kwargs["restart_delay"] = args.restart_delay
    runtime = runtime_class(runtime_dir, aws_env, **kwargs)
    resources = AwsResources.for_endpoint(args.moto_endpoint, args.region) if args.moto_endpoint else None
    backend = MwaaBackend(
        runtime, store=EnvironmentStore(state_dir / "emulator"), stretch=args.stretch, resources=resources
    )
    deferred.app = create_app(backend, default_region=args.region, runtime_name=args.runtime)
    loaded = backend.load()
    log.info(
        "MWAA emulator on %s (runtime %s, %d environment(s) loaded)", server.url, args.runtime, len(loaded)
    )
    if args.port_file:
        args.port_file.write_text(str(server.port), "utf-8")

    heartbeat = None
    if args.moto_endpoint and args.heartbeat_interval > 0:
        heartbeat = HeartbeatPublisher(backend, args.moto_endpoint, interval=args.heartbeat_interval).start()

    stop.wait()
    log.info("stopping the MWAA emulator")
    server.stop()
    if heartbeat is not None:
        heartbeat.stop()
    backend.close()
    try:
        runtime.shutdown()
    except Exception:
        log.exception("runtime.shutdown() failed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
