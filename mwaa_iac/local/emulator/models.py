"""State and lifecycle of emulated MWAA environments. Knows nothing of HTTP.

State is keyed by account, then region, then environment name. Every API operation has a method
named after it in snake_case taking a :class:`RequestContext` and the operation's input members (as
the model names them); it returns the output members. Errors are the typed exceptions of
:mod:`.exceptions`.

Lifecycles are declared in :data:`TRANSITIONS`; :meth:`MwaaBackend._transition` refuses anything
else. The work behind a transition is done by a :class:`~mwaa_iac.local.runtime.base.Runtime` in a
worker thread per environment (one at a time per environment); the status moves on as the runtime
returns, but stays at least ``stretch`` seconds in each transitional status so that tests and demos
can observe it:

- create: CREATING → AVAILABLE, or CREATE_FAILED (``LastUpdate.Error`` says why);
- update: UPDATING → (CREATING_SNAPSHOT → UPDATING, for a version change) → AVAILABLE; on failure
  → ROLLING_BACK → UPDATE_FAILED (old configuration serving again) or UNAVAILABLE (rollback failed);
- delete: DELETING → gone (GetEnvironment then raises ResourceNotFoundException).

Restart semantics (records are persisted on every change; faults are not): at start,
AVAILABLE and UPDATE_FAILED environments are resumed with ``runtime.resume`` (UNAVAILABLE if that
fails); an environment caught CREATING becomes CREATE_FAILED; one caught UPDATING, CREATING_SNAPSHOT
or ROLLING_BACK becomes UNAVAILABLE, since its database may be half migrated (as on AWS when a
rollback fails, a human must decide; delete it or restore it); one caught DELETING is deleted.
In every case ``LastUpdate.Error.ErrorCode`` is ``EMULATOR_RESTARTED``.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from mwaa_iac.core.catalog import Catalog, load_catalog, parse_version
from mwaa_iac.core.planner import in_place_refusal
from mwaa_iac.local.emulator.exceptions import (
    ResourceNotFoundException,
    RestApiClientException,
    RestApiServerException,
    ThrottlingException,
    ValidationException,
)
from mwaa_iac.local.emulator.persistence import EnvironmentStore
from mwaa_iac.local.emulator.resources import AwsResources
from mwaa_iac.local.emulator.validation import format_errors
from mwaa_iac.local.runtime.base import ApiResponse, EnvSpec, Runtime, RuntimeFailure

log = logging.getLogger(__name__)

DEFAULT_ACCOUNT = "123456789012"
ENVIRONMENT_CLASSES = ("mw1.micro", "mw1.small", "mw1.medium", "mw1.large", "mw1.xlarge", "mw1.2xlarge")
LOG_MODULES = {  # LoggingConfiguration member -> CloudWatch log group suffix
    "DagProcessingLogs": "DAGProcessing",
    "SchedulerLogs": "Scheduler",
    "TaskLogs": "Task",
    "WebserverLogs": "WebServer",
    "WorkerLogs": "Worker",
}
# Members of CreateEnvironment that UpdateEnvironment cannot change (not in its input shape).
CREATE_ONLY = {
    "KmsKey": "KmsKey",
    "EndpointManagement": "EndpointManagement",
    "Tags": "Tags (use TagResource/UntagResource)",
    "NetworkConfiguration.SubnetIds": "NetworkConfiguration.SubnetIds",
}
MIN_INVOKE_VERSION = (2, 4, 3)
MAX_RESPONSE_BYTES = 6 * 1024 * 1024
RESTART_CODE = "EMULATOR_RESTARTED"


class Status(StrEnum):
    CREATING = "CREATING"
    CREATE_FAILED = "CREATE_FAILED"
    AVAILABLE = "AVAILABLE"
    UPDATING = "UPDATING"
    DELETING = "DELETING"
    DELETED = "DELETED"
    UNAVAILABLE = "UNAVAILABLE"
    UPDATE_FAILED = "UPDATE_FAILED"
    ROLLING_BACK = "ROLLING_BACK"
    CREATING_SNAPSHOT = "CREATING_SNAPSHOT"
    PENDING = "PENDING"
    MAINTENANCE = "MAINTENANCE"


S = Status
TRANSITIONS: dict[Status | None, frozenset[Status]] = {
    None: frozenset({S.CREATING}),
    S.CREATING: frozenset({S.AVAILABLE, S.CREATE_FAILED}),
    S.AVAILABLE: frozenset({S.UPDATING, S.DELETING, S.UNAVAILABLE}),
    S.UPDATING: frozenset({S.CREATING_SNAPSHOT, S.AVAILABLE, S.ROLLING_BACK, S.UNAVAILABLE}),
    S.CREATING_SNAPSHOT: frozenset({S.UPDATING, S.ROLLING_BACK, S.UNAVAILABLE}),
    S.ROLLING_BACK: frozenset({S.UPDATE_FAILED, S.UNAVAILABLE}),
    S.UPDATE_FAILED: frozenset({S.UPDATING, S.DELETING, S.UNAVAILABLE}),
    S.CREATE_FAILED: frozenset({S.DELETING}),
    S.UNAVAILABLE: frozenset({S.DELETING}),
    S.DELETING: frozenset({S.DELETED, S.UNAVAILABLE}),
    S.DELETED: frozenset(),
    S.PENDING: frozenset({S.AVAILABLE, S.CREATE_FAILED}),
    S.MAINTENANCE: frozenset({S.AVAILABLE}),
}
UPDATABLE = frozenset({S.AVAILABLE, S.UPDATE_FAILED})
DELETABLE = frozenset({S.AVAILABLE, S.UPDATE_FAILED, S.CREATE_FAILED, S.UNAVAILABLE})
SERVING = frozenset({S.AVAILABLE, S.UPDATE_FAILED})  # Airflow is up (UPDATE_FAILED: the old version)


class TransitionError(RuntimeError):
    """A status change outside :data:`TRANSITIONS` (a bug in the emulator)."""


class AdminError(ValueError):
    """A fault-injection or admin request the emulator cannot honour."""


@dataclass(frozen=True)
class RequestContext:
    account: str = DEFAULT_ACCOUNT
    region: str = "us-east-1"


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def host_port(url: str) -> str:
    """``http://127.0.0.1:8080/x`` → ``127.0.0.1:8080`` (AWS reports WebserverUrl without a scheme)."""
    parts = urlsplit(url if "//" in url else f"//{url}")
    return parts.netloc or url


def spec_for(name: str, config: dict[str, Any]) -> EnvSpec:
    bucket_arn = config.get("SourceBucketArn", "")
    return EnvSpec(
        name=name,
        airflow_version=config["AirflowVersion"],
        source_bucket=bucket_arn.rsplit(":", 1)[-1],
        dag_s3_path=config.get("DagS3Path", "dags"),
        requirements_s3_path=config.get("RequirementsS3Path"),
        plugins_s3_path=config.get("PluginsS3Path"),
        startup_script_s3_path=config.get("StartupScriptS3Path"),
        airflow_configuration_options=dict(config.get("AirflowConfigurationOptions") or {}),
        requirements_s3_object_version=config.get("RequirementsS3ObjectVersion"),
        plugins_s3_object_version=config.get("PluginsS3ObjectVersion"),
        startup_script_s3_object_version=config.get("StartupScriptS3ObjectVersion"),
    )


@dataclass
class Environment:
    """One emulated environment. ``config`` holds the input members as given (plus MWAA's defaults)."""

    account: str
    region: str
    name: str
    created_at: datetime
    config: dict[str, Any]
    tags: dict[str, str] = field(default_factory=dict)
    status: Status | None = None
    webserver_url: str | None = None
    last_update: dict[str, Any] | None = None
    status_since: float = field(default_factory=time.monotonic)
    history: list[Status] = field(default_factory=list, repr=False, compare=False)  # this process only
    update_requests: int = field(default=0, compare=False)  # accepted UpdateEnvironment calls, this process
    op_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    serving: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    @property
    def arn(self) -> str:
        return f"arn:aws:airflow:{self.region}:{self.account}:environment/{self.name}"

    @property
    def spec(self) -> EnvSpec:
        return spec_for(self.name, self.config)

    def to_api(self) -> dict[str, Any]:
        """The ``Environment`` output shape (the serializer drops anything the model lacks)."""
        data: dict[str, Any] = {k: v for k, v in self.config.items() if k != "LoggingConfiguration"}
        logging_config = {}
        for module, settings in (self.config.get("LoggingConfiguration") or {}).items():
            entry = dict(settings)
            if entry.get("Enabled"):
                suffix = LOG_MODULES.get(module, module)
                entry["CloudWatchLogGroupArn"] = (
                    f"arn:aws:logs:{self.region}:{self.account}:log-group:airflow-{self.name}-{suffix}"
                )
            logging_config[module] = entry
        data.update(
            Name=self.name,
            Arn=self.arn,
            Status=str(self.status),
            CreatedAt=self.created_at,
            LoggingConfiguration=logging_config,
            Tags=dict(self.tags),
        )
        if self.webserver_url:
            data["WebserverUrl"] = self.webserver_url
        if self.last_update:
            data["LastUpdate"] = dict(self.last_update)
        return data

    def to_record(self) -> dict[str, Any]:
        last = dict(self.last_update) if self.last_update else None
        if last and isinstance(last.get("CreatedAt"), datetime):
            last["CreatedAt"] = _iso(last["CreatedAt"])
        return {
            "account": self.account,
            "region": self.region,
            "name": self.name,
            "status": str(self.status),
            "created_at": _iso(self.created_at),
            "config": self.config,
            "tags": self.tags,
            "webserver_url": self.webserver_url,
            "last_update": last,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Environment:
        last = record.get("last_update")
        if last and last.get("CreatedAt"):
            last = {**last, "CreatedAt": _parse_time(last["CreatedAt"])}
        return cls(
            account=record["account"],
            region=record["region"],
            name=record["name"],
            created_at=_parse_time(record["created_at"]) or _now(),
            config=record["config"],
            tags=record.get("tags") or {},
            status=Status(record["status"]),
            webserver_url=record.get("webserver_url"),
            last_update=last,
        )

    def summary(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "region": self.region,
            "name": self.name,
            "arn": self.arn,
            "status": str(self.status),
            "airflow_version": self.config.get("AirflowVersion"),
            "webserver_url": self.webserver_url,
            "last_update": _jsonable_last_update(self.last_update),
            "update_requests": self.update_requests,
            "history": [str(s) for s in self.history],
        }


def _jsonable_last_update(last: dict[str, Any] | None) -> dict[str, Any] | None:
    if not last:
        return None
    out = dict(last)
    if isinstance(out.get("CreatedAt"), datetime):
        out["CreatedAt"] = _iso(out["CreatedAt"])
    return out


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` banked."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.clock = clock
        self.updated = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class Faults:
    """Pending fault injections (kept in memory only)."""

    fail_create: dict[str, str] = field(default_factory=dict)
    fail_update: dict[str, tuple[str, bool]] = field(default_factory=dict)
    throttle: dict[str, int] = field(default_factory=dict)
    stretch: float = 0.0
    stretch_by_env: dict[str, float] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        return {
            "fail_create": [{"environment": k, "message": v} for k, v in sorted(self.fail_create.items())],
            "fail_update": [
                {"environment": k, "message": m, "fail_rollback": rb}
                for k, (m, rb) in sorted(self.fail_update.items())
            ],
            "throttle": [{"environment": k, "count": v} for k, v in sorted(self.throttle.items())],
            "stretch": {"seconds": self.stretch, "environments": dict(sorted(self.stretch_by_env.items()))},
        }


def _encode_token(after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode()


def _decode_token(token: str) -> str:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        after = data["after"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ValidationException(f"Invalid NextToken: {token}") from None
    if not isinstance(after, str):
        raise ValidationException(f"Invalid NextToken: {token}")
    return after


def _query_strings(query: Any) -> dict[str, Any] | None:
    """QueryParameters (a JSON document) → strings, as they will travel in a URL."""
    if query is None:
        return None
    if not isinstance(query, dict):
        raise ValidationException("QueryParameters must be a JSON object")

    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        return value if isinstance(value, str) else json.dumps(value)

    return {
        k: [text(v) for v in value] if isinstance(value, list) else text(value) for k, value in query.items()
    }


class MwaaBackend:
    """All emulated environments of one emulator process."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        store: EnvironmentStore | None = None,
        catalog: Catalog | None = None,
        today: Callable[[], date] = date.today,
        stretch: float = 0.0,
        invoke_rate: float = 10.0,
        invoke_burst: float = 10.0,
        invoke_timeout: float = 10.0,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        clock: Callable[[], float] = time.monotonic,
        resources: AwsResources | None = None,
    ) -> None:
        self.runtime = runtime
        self.resources = resources
        self.store = store
        self.catalog = catalog or load_catalog()
        self.today = today
        self.invoke_rate = invoke_rate
        self.invoke_burst = invoke_burst
        self.invoke_timeout = invoke_timeout
        self.max_response_bytes = max_response_bytes
        self.clock = clock
        self.base_stretch = stretch
        self.faults = Faults(stretch=stretch)
        self._accounts: dict[str, dict[str, dict[str, Environment]]] = {}
        self._lock = threading.RLock()
        self._closed = threading.Event()
        self._workers: set[threading.Thread] = set()
        self._buckets: dict[str, TokenBucket] = {}
        self._invoker = ThreadPoolExecutor(max_workers=32, thread_name_prefix="mwaa-invoke")

    # ------------------------------------------------------------------ lookups

    def _region(self, account: str, region: str) -> dict[str, Environment]:
        return self._accounts.setdefault(account, {}).setdefault(region, {})

    def _all(self) -> list[Environment]:
        return [
            env for regions in self._accounts.values() for envs in regions.values() for env in envs.values()
        ]

    def _by_name(self, name: str) -> Environment | None:
        for env in self._all():
            if env.name == name:
                return env
        return None

    def _require(self, ctx: RequestContext, name: str) -> Environment:
        env = self._accounts.get(ctx.account, {}).get(ctx.region, {}).get(name)
        if env is None:
            raise ResourceNotFoundException(f"Environment named {name} not found")
        return env

    def _require_arn(self, ctx: RequestContext, arn: str) -> Environment:
        prefix = f"arn:aws:airflow:{ctx.region}:{ctx.account}:environment/"
        if not arn.startswith(prefix):
            raise ResourceNotFoundException(f"Resource {arn} not found")
        env = self._accounts.get(ctx.account, {}).get(ctx.region, {}).get(arn[len(prefix) :])
        if env is None:
            raise ResourceNotFoundException(f"Resource {arn} not found")
        return env

    def environments(self) -> list[dict[str, Any]]:
        """Summaries of every environment (all accounts and regions), for the admin API."""
        with self._lock:
            return [env.summary() for env in sorted(self._all(), key=lambda e: (e.account, e.region, e.name))]

    def history(self, name: str) -> list[str]:
        """Statuses ``name`` went through since this process started (tests, debugging)."""
        with self._lock:
            env = self._by_name(name)
            return [str(s) for s in env.history] if env else []

    def serving_environments(self) -> list[Environment]:
        with self._lock:
            return [env for env in self._all() if env.status in SERVING and env.serving.is_set()]

    # ------------------------------------------------------------------ lifecycle plumbing

    def _transition(self, env: Environment, new: Status) -> bool:
        """Move ``env`` to ``new`` if declared; persist. False once the emulator is closing."""
        with self._lock:
            if self._closed.is_set():
                return False
            if new not in TRANSITIONS.get(env.status, frozenset()):
                raise TransitionError(f"{env.name}: {env.status} → {new} is not a declared transition")
            log.info("environment %s: %s → %s", env.name, env.status, new)
            env.status = new
            env.status_since = time.monotonic()
            env.history.append(new)
            if new is S.DELETED:
                self._region(env.account, env.region).pop(env.name, None)
                self._buckets.pop(env.name, None)
                if self.store:
                    self.store.delete(env.account, env.region, env.name)
            else:
                self._persist(env)
            return True

    def _persist(self, env: Environment) -> None:
        if self.store is not None and not self._closed.is_set():
            self.store.save(env.to_record())

    def _stretch_for(self, name: str) -> float:
        return self.faults.stretch_by_env.get(name, self.faults.stretch)

    def _hold(self, env: Environment) -> None:
        """Stay in the current status at least the configured stretch."""
        remaining = env.status_since + self._stretch_for(env.name) - time.monotonic()
        if remaining > 0:
            self._closed.wait(remaining)

    def _spawn(self, target: Callable[..., None], env: Environment, *args: Any) -> None:
        def run() -> None:
            try:
                target(env, *args)
            except Exception:
                log.exception("worker for environment %s failed", env.name)
            finally:
                with self._lock:
                    self._workers.discard(threading.current_thread())

        thread = threading.Thread(target=run, name=f"mwaa-{env.name}-{target.__name__}", daemon=True)
        with self._lock:
            self._workers.add(thread)
        thread.start()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until no transition is running (tests). True when idle."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                workers = list(self._workers)
            if not workers:
                return True
            for worker in workers:
                worker.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            return not self._workers

    def close(self) -> None:
        """Stop persisting and stop waiting; running transitions are abandoned (see module docs)."""
        self._closed.set()
        self._invoker.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ configuration rules

    def _default_version(self) -> str:
        supported = self.catalog.supported(self.today())
        return max(supported, key=lambda v: v.key).version

    def _require_version(self, version: str) -> None:
        item = self.catalog.get(version)
        if item is None:
            names = ", ".join(v.version for v in self.catalog.supported(self.today()))
            raise ValidationException(
                f"Airflow version {version} is not supported. Supported versions: {names}"
            )
        if not item.is_supported(self.today()):
            raise ValidationException(
                f"Airflow version {version} reached end of support on {item.end_of_support} and is no longer "
                "available for new environments"
            )

    @staticmethod
    def _check_config(config: dict[str, Any]) -> None:
        """Rules AWS applies beyond the model (the model leaves these members unconstrained)."""
        env_class = config["EnvironmentClass"]
        if env_class not in ENVIRONMENT_CLASSES:
            raise ValidationException(
                f"Invalid EnvironmentClass {env_class}. Valid values: {', '.join(ENVIRONMENT_CLASSES)}"
            )
        micro = env_class == "mw1.micro"
        schedulers = config["Schedulers"]
        if micro and schedulers != 1:
            raise ValidationException(
                f"Schedulers must be 1 for environment class mw1.micro, got {schedulers}"
            )
        if not micro and not 2 <= schedulers <= 5:
            raise ValidationException(
                f"Schedulers must be between 2 and 5 for environment class {env_class}, got {schedulers}"
            )
        low, high = config["MinWebservers"], config["MaxWebservers"]
        limit = (1, 1) if micro else (2, 5)
        for label, value in (("MinWebservers", low), ("MaxWebservers", high)):
            if not limit[0] <= value <= limit[1]:
                raise ValidationException(
                    f"{label} must be between {limit[0]} and {limit[1]} for environment class {env_class}, "
                    f"got {value}"
                )
        if low > high:
            raise ValidationException(
                f"MinWebservers ({low}) must not be greater than MaxWebservers ({high})"
            )
        low, high = config["MinWorkers"], config["MaxWorkers"]
        if high > 25:
            raise ValidationException(f"MaxWorkers must be at most 25, got {high}")
        if low > high:
            raise ValidationException(f"MinWorkers ({low}) must not be greater than MaxWorkers ({high})")

    @staticmethod
    def _check_tags(tags: dict[str, str]) -> None:
        reserved = sorted(k for k in tags if k.lower().startswith("aws:"))
        if reserved:
            raise ValidationException(
                f"Tag keys starting with 'aws:' are reserved for AWS use: {', '.join(reserved)}"
            )
        if len(tags) > 50:
            raise ValidationException(
                f"An environment can have at most 50 tags; this request would give it {len(tags)}"
            )

    def _initial_config(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        env_class = params.get("EnvironmentClass", "mw1.small")
        micro = env_class == "mw1.micro"
        config: dict[str, Any] = {
            "AirflowVersion": self._default_version(),
            "EnvironmentClass": env_class,
            "MaxWorkers": 1 if micro else 10,
            "MinWorkers": 1,
            "Schedulers": 1 if micro else 2,
            "MinWebservers": 1 if micro else 2,
            "MaxWebservers": 1 if micro else 2,
            "WebserverAccessMode": "PRIVATE_ONLY",
            "EndpointManagement": "SERVICE",
            "WeeklyMaintenanceWindowStart": "SUN:03:30",
            "AirflowConfigurationOptions": {},
            "ServiceRoleArn": (
                f"arn:aws:iam::{ctx.account}:role/aws-service-role/airflow.amazonaws.com/AWSServiceRoleForAmazonMWAA"
            ),
            "CeleryExecutorQueue": f"arn:aws:sqs:{ctx.region}:{ctx.account}:airflow-celery-{uuid.uuid4()}",
        }
        config.update({k: v for k, v in params.items() if k not in ("Name", "Tags", "LoggingConfiguration")})
        logging_config = {module: {"Enabled": False, "LogLevel": "INFO"} for module in LOG_MODULES}
        logging_config.update(params.get("LoggingConfiguration") or {})
        config["LoggingConfiguration"] = logging_config
        if config["EndpointManagement"] == "CUSTOMER":
            suffix = secrets.token_hex(8)
            config["WebserverVpcEndpointService"] = f"com.amazonaws.vpce.{ctx.region}.vpce-svc-web{suffix}"
            config["DatabaseVpcEndpointService"] = f"com.amazonaws.vpce.{ctx.region}.vpce-svc-db{suffix}"
        return config

    @staticmethod
    def _merged_config(config: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
        merged = json.loads(json.dumps(config))  # deep copy of plain JSON data
        for key, value in changes.items():
            if key == "NetworkConfiguration":
                merged.setdefault("NetworkConfiguration", {}).update(value)
            elif key == "LoggingConfiguration":
                merged.setdefault("LoggingConfiguration", {}).update(value)
            else:
                merged[key] = value
        return merged

    # ------------------------------------------------------------------ operations

    def create_environment(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["Name"]
        network = params.get("NetworkConfiguration") or {}
        missing = [
            f"Value null at 'networkConfiguration.{m[0].lower()}{m[1:]}' failed to satisfy constraint: "
            "Member must not be null"
            for m in ("SubnetIds", "SecurityGroupIds")
            if not network.get(m)
        ]
        if missing:
            raise ValidationException(format_errors(missing))
        config = self._initial_config(ctx, params)
        self._require_version(config["AirflowVersion"])
        self._check_config(config)
        tags = dict(params.get("Tags") or {})
        self._check_tags(tags)
        if self.resources is not None:
            self.resources.check_role(config["ExecutionRoleArn"])
            self.resources.resolve_versions(config)
        with self._lock:
            existing = self._by_name(name)
            if existing is not None:
                where = (
                    ""
                    if (existing.account, existing.region) == (ctx.account, ctx.region)
                    else f" (in {existing.account}/{existing.region}; the local emulator needs names unique "
                    "across accounts and regions)"
                )
                raise ValidationException(f"An environment named {name} already exists{where}")
            env = Environment(
                account=ctx.account, region=ctx.region, name=name, created_at=_now(), config=config
            )
            env.tags = tags
            env.last_update = {"Status": "PENDING", "CreatedAt": _now(), "Source": "CUSTOMER"}
            self._region(ctx.account, ctx.region)[name] = env
            self._transition(env, S.CREATING)
            self._spawn(self._run_create, env, self.faults.fail_create.pop(name, None))
        return {"Arn": env.arn}

    def get_environment(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"Environment": self._require(ctx, params["Name"]).to_api()}

    def list_environments(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        limit = params.get("MaxResults") or 25
        with self._lock:
            names = sorted(self._accounts.get(ctx.account, {}).get(ctx.region, {}))
        start = 0
        if params.get("NextToken"):
            start = bisect.bisect_right(names, _decode_token(params["NextToken"]))
        page = names[start : start + limit]
        result: dict[str, Any] = {"Environments": page}
        if start + limit < len(names) and page:
            result["NextToken"] = _encode_token(page[-1])
        return result

    def prevalidate_update_environment(self, params: dict[str, Any]) -> None:
        """Name the create-only members plainly (they are not in UpdateEnvironment's input shape)."""
        present = [k for k in CREATE_ONLY if "." not in k and k in params]
        network = params.get("NetworkConfiguration")
        if isinstance(network, dict) and "SubnetIds" in network:
            present.append("NetworkConfiguration.SubnetIds")
        if present:
            names = ", ".join(CREATE_ONLY[k] for k in present)
            raise ValidationException(
                f"{names} can only be set when the environment is created; UpdateEnvironment cannot change "
                f"{'it' if len(present) == 1 else 'them'}"
            )

    def update_environment(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["Name"]
        with self._lock:
            env = self._require(ctx, name)
            if env.status not in UPDATABLE:
                raise ValidationException(
                    f"Environment {name} is in status {env.status}; it can only be updated when it is "
                    "AVAILABLE or UPDATE_FAILED"
                )
            changes = {k: v for k, v in params.items() if k != "Name"}
            new_config = self._merged_config(env.config, changes)
            old_version, new_version = env.config["AirflowVersion"], new_config["AirflowVersion"]
            if new_version != old_version:
                target = self.catalog.get(new_version)
                source = self.catalog.get(old_version)
                if target is None:
                    self._require_version(new_version)
                assert target is not None
                refusal = (
                    in_place_refusal(source, target, self.catalog, self.today())
                    if source is not None
                    else f"Airflow {old_version} is not a version MWAA knows"
                )
                if refusal:
                    raise ValidationException(
                        f"Environment {name} cannot be updated from Airflow {old_version} to {new_version}: "
                        f"{refusal}"
                    )
            self._check_config(new_config)
            if self.resources is not None:
                if "ExecutionRoleArn" in changes:
                    self.resources.check_role(new_config["ExecutionRoleArn"])
                self.resources.resolve_versions(new_config, changes)
            fault = self.faults.fail_update.pop(name, None)
            old_config = env.config
            env.update_requests += 1
            env.last_update = {"Status": "PENDING", "CreatedAt": _now(), "Source": "CUSTOMER"}
            env.serving.clear()
            self._transition(env, S.UPDATING)
            self._spawn(self._run_update, env, old_config, new_config, fault)
        return {"Arn": env.arn}

    def delete_environment(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["Name"]
        with self._lock:
            env = self._require(ctx, name)
            if env.status not in DELETABLE:
                raise ValidationException(
                    f"Environment {name} is in status {env.status} and cannot be deleted until the operation "
                    "in progress finishes"
                )
            env.serving.clear()
            self._transition(env, S.DELETING)
            self._spawn(self._run_delete, env)
        return {}

    def tag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            env = self._require_arn(ctx, params["ResourceArn"])
            merged = {**env.tags, **params["Tags"]}
            self._check_tags(merged)
            env.tags = merged
            self._persist(env)
        return {}

    def untag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            env = self._require_arn(ctx, params["ResourceArn"])
            for key in params.get("tagKeys") or []:
                env.tags.pop(key, None)
            self._persist(env)
        return {}

    def list_tags_for_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"Tags": dict(self._require_arn(ctx, params["ResourceArn"]).tags)}

    def create_cli_token(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            env = self._require(ctx, params["Name"])
            return {
                "CliToken": secrets.token_urlsafe(32),
                "WebServerHostname": env.webserver_url or "127.0.0.1",
            }

    def create_web_login_token(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            env = self._require(ctx, params["Name"])
            return {
                "WebToken": secrets.token_urlsafe(32),
                "WebServerHostname": env.webserver_url or "127.0.0.1",
                "IamIdentity": f"user/{ctx.account}",
                "AirflowIdentity": f"assumed-role/{ctx.account}",
            }

    def invoke_rest_api(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["Name"]
        with self._lock:
            env = self._require(ctx, name)
            status = env.status
            version = env.config["AirflowVersion"]
        if status not in SERVING:
            raise ValidationException(
                f"Environment {name} is in status {status}; the Apache Airflow REST API is reachable only "
                "when it is AVAILABLE"
            )
        if parse_version(version) < MIN_INVOKE_VERSION:
            raise ValidationException(
                f"InvokeRestApi needs Apache Airflow 2.4.3 or later; {name} runs {version}"
            )
        self._take_token(name)
        if not env.serving.wait(self.invoke_timeout):
            raise RestApiServerException(
                503, {"title": "Service Unavailable", "status": 503, "detail": "starting"}
            )
        query = _query_strings(params.get("QueryParameters"))
        future = self._invoker.submit(
            self.runtime.invoke, name, params["Method"], params["Path"], query, params.get("Body")
        )
        try:
            response: ApiResponse = future.result(timeout=self.invoke_timeout)
        except FutureTimeout:
            raise RestApiServerException(
                504,
                {
                    "title": "Gateway Timeout",
                    "status": 504,
                    "detail": f"no answer within {self.invoke_timeout:g} s",
                },
            ) from None
        except RuntimeFailure as exc:
            raise RestApiServerException(
                503, {"title": "Service Unavailable", "status": 503, "detail": exc.message}
            ) from None
        size = len(json.dumps(response.body).encode("utf-8"))
        if size > self.max_response_bytes:
            raise ValidationException(
                f"The Apache Airflow REST API response is {size} bytes, over the "
                f"{self.max_response_bytes // (1024 * 1024)} MB limit of InvokeRestApi; request less "
                "(for example with limit and offset)"
            )
        if 400 <= response.status < 500:
            raise RestApiClientException(response.status, response.body)
        if response.status >= 500:
            raise RestApiServerException(response.status, response.body)
        return {"RestApiStatusCode": response.status, "RestApiResponse": response.body}

    def _take_token(self, name: str) -> None:
        with self._lock:
            forced = self.faults.throttle.get(name, 0)
            if forced > 0:
                if forced == 1:
                    del self.faults.throttle[name]
                else:
                    self.faults.throttle[name] = forced - 1
                raise ThrottlingException("Rate exceeded")
            bucket = self._buckets.get(name)
            if bucket is None:
                bucket = self._buckets[name] = TokenBucket(self.invoke_rate, self.invoke_burst, self.clock)
            if not bucket.take():
                raise ThrottlingException("Rate exceeded")

    # ------------------------------------------------------------------ workers

    def _fail(self, env: Environment, status: Status, code: str, message: str) -> None:
        with self._lock:
            if self._closed.is_set():
                return
            previous = env.last_update or {}
            env.last_update = {
                "Status": "FAILED",
                "CreatedAt": previous.get("CreatedAt") or _now(),
                "Source": previous.get("Source") or "CUSTOMER",
                "Error": {"ErrorCode": code, "ErrorMessage": message or code},
            }
            self._transition(env, status)

    def _run_create(self, env: Environment, fault: str | None) -> None:
        with env.op_lock:
            try:
                if fault is not None:
                    raise RuntimeFailure(fault, code="InjectedFault")
                url = self.runtime.create(env.spec)
            except RuntimeFailure as exc:
                self._hold(env)
                self._fail(env, S.CREATE_FAILED, exc.code, exc.message)
                return
            except Exception as exc:
                log.exception("runtime.create(%s) raised", env.name)
                self._hold(env)
                self._fail(env, S.CREATE_FAILED, "InternalError", f"{type(exc).__name__}: {exc}")
                return
            self._hold(env)
            with self._lock:
                if self._closed.is_set():
                    return
                env.webserver_url = host_port(url)
                env.last_update = {**(env.last_update or {}), "Status": "SUCCESS"}
                env.serving.set()
                self._transition(env, S.AVAILABLE)

    def _run_update(
        self, env: Environment, old: dict[str, Any], new: dict[str, Any], fault: tuple[str, bool] | None
    ) -> None:
        with env.op_lock:
            self._hold(env)
            if old["AirflowVersion"] != new["AirflowVersion"]:
                if not self._transition(env, S.CREATING_SNAPSHOT):
                    return
                self._hold(env)
                if not self._transition(env, S.UPDATING):
                    return
            message, fail_rollback = fault if fault else (None, False)
            try:
                url = self.runtime.update(
                    spec_for(env.name, old),
                    spec_for(env.name, new),
                    fail=message,
                    fail_rollback=fail_rollback,
                )
            except RuntimeFailure as exc:
                code, text, rolled_back = exc.code, exc.message, exc.rolled_back
            except Exception as exc:
                log.exception("runtime.update(%s) raised", env.name)
                code, text, rolled_back = "InternalError", f"{type(exc).__name__}: {exc}", False
            else:
                self._hold(env)
                with self._lock:
                    if self._closed.is_set():
                        return
                    env.config = new
                    env.webserver_url = host_port(url)
                    env.last_update = {**(env.last_update or {}), "Status": "SUCCESS"}
                    env.serving.set()
                    self._transition(env, S.AVAILABLE)
                return
            self._hold(env)
            if not self._transition(env, S.ROLLING_BACK):
                return
            self._hold(env)
            self._fail(env, S.UPDATE_FAILED if rolled_back else S.UNAVAILABLE, code, text)
            if rolled_back:
                env.serving.set()

    def _run_delete(self, env: Environment) -> None:
        with env.op_lock:
            self._hold(env)
            try:
                self.runtime.delete(env.name)
            except Exception as exc:
                log.exception("runtime.delete(%s) raised", env.name)
                code = exc.code if isinstance(exc, RuntimeFailure) else "InternalError"
                self._fail(env, S.UNAVAILABLE, code, f"delete failed: {exc}")
                return
            self._transition(env, S.DELETED)

    def _run_resume(self, env: Environment) -> None:
        with env.op_lock:
            try:
                url = self.runtime.resume(env.spec)
            except Exception as exc:
                if not isinstance(exc, RuntimeFailure):
                    log.exception("runtime.resume(%s) raised", env.name)
                self._restart_failure(env, S.UNAVAILABLE, f"could not resume the environment: {exc}")
                return
            with self._lock:
                env.webserver_url = host_port(url)
                self._persist(env)
                env.serving.set()

    # ------------------------------------------------------------------ persistence

    def _restart_failure(self, env: Environment, status: Status, message: str) -> None:
        with self._lock:
            env.last_update = {
                "Status": "FAILED",
                "CreatedAt": _now(),
                "Source": "EMULATOR",
                "Error": {"ErrorCode": RESTART_CODE, "ErrorMessage": message},
            }
            self._transition(env, status)

    def load(self) -> list[str]:
        """Read the persisted environments and bring them back (see the module docstring)."""
        if self.store is None:
            return []
        loaded: list[str] = []
        for record in self.store.load_all():
            try:
                env = Environment.from_record(record)
            except (KeyError, ValueError) as exc:
                log.error("ignoring environment record %s: %s", record.get("name"), exc)
                continue
            with self._lock:
                self._region(env.account, env.region)[env.name] = env
            loaded.append(env.name)
            if env.status in SERVING:
                self._spawn(self._run_resume, env)
            elif env.status is S.CREATING:
                self._restart_failure(
                    env, S.CREATE_FAILED, "the emulator stopped while the environment was created"
                )
            elif env.status in (S.UPDATING, S.CREATING_SNAPSHOT, S.ROLLING_BACK):
                self._restart_failure(
                    env,
                    S.UNAVAILABLE,
                    f"the emulator stopped while the environment was {env.status}; its database may be half "
                    "migrated: delete the environment, or restore it by hand",
                )
            elif env.status is S.DELETING:
                self._spawn(self._run_delete, env)
        return loaded

    # ------------------------------------------------------------------ admin (fault injection, sync)

    def inject_fault(
        self,
        fault: str,
        *,
        environment: str | None = None,
        message: str | None = None,
        count: int | None = None,
        seconds: float | None = None,
        fail_rollback: bool = False,
    ) -> dict[str, Any]:
        """Arm a fault. Kinds: fail_create, fail_update, fail_rollback, throttle, kill_scheduler, stretch."""
        kind = fault.replace("-", "_")
        if kind != "stretch" and not environment:
            raise AdminError(f"fault {fault!r} needs an environment name")
        name = environment or ""  # every kind but stretch has one (checked above)
        with self._lock:
            if kind == "fail_create":
                self.faults.fail_create[name] = message or "Injected fault: environment creation failed"
            elif kind == "fail_update":
                text = message or "Injected fault: environment update failed"
                self.faults.fail_update[name] = (text, bool(fail_rollback))
            elif kind == "fail_rollback":
                text = message or "Injected fault: environment update failed and its rollback failed too"
                self.faults.fail_update[name] = (text, True)
            elif kind == "throttle":
                number = 1 if count is None else int(count)
                if number < 1:
                    raise AdminError("throttle count must be at least 1")
                self.faults.throttle[name] = self.faults.throttle.get(name, 0) + number
            elif kind == "stretch":
                value = float(seconds if seconds is not None else 0.0)
                if value < 0:
                    raise AdminError("stretch seconds must not be negative")
                if environment:
                    self.faults.stretch_by_env[environment] = value
                else:
                    self.faults.stretch = value
            elif kind == "kill_scheduler":
                pass
            else:
                raise AdminError(
                    f"unknown fault {fault!r}; expected one of fail_create, fail_update, fail_rollback, "
                    "throttle, kill_scheduler, stretch"
                )
        if kind == "kill_scheduler":
            self.kill_scheduler(name)
        return self.faults.snapshot()

    def clear_faults(self, environment: str | None = None) -> dict[str, Any]:
        with self._lock:
            if environment is None:
                self.faults = Faults(stretch=self.base_stretch)
            else:
                self.faults.fail_create.pop(environment, None)
                self.faults.fail_update.pop(environment, None)
                self.faults.throttle.pop(environment, None)
                self.faults.stretch_by_env.pop(environment, None)
            return self.faults.snapshot()

    def kill_scheduler(self, name: str) -> None:
        with self._lock:
            env = self._by_name(name)
        if env is None:
            raise AdminError(f"no environment named {name}")
        if env.status not in SERVING:
            raise AdminError(f"environment {name} is {env.status}: its scheduler is not running")
        if not env.op_lock.acquire(timeout=30):
            raise AdminError(f"environment {name} is busy; try again")
        try:
            self.runtime.kill_scheduler(name)
        finally:
            env.op_lock.release()

    def sync_environments(self, name: str | None = None, *, wait: bool = True) -> dict[str, Any]:
        """Sync DAGs from S3 into serving environments (all, or ``name``). Busy ones are skipped
        unless ``wait``."""
        if name is not None:
            with self._lock:
                env = self._by_name(name)
            if env is None:
                raise AdminError(f"no environment named {name}")
            targets = [env]
        else:
            targets = self.serving_environments()
        synced: list[str] = []
        errors: dict[str, str] = {}
        for env in targets:
            if env.status not in SERVING:
                errors[env.name] = f"environment is {env.status}"
                continue
            if not env.op_lock.acquire(timeout=60 if wait else 0):
                errors[env.name] = "busy"
                continue
            try:
                self.runtime.sync(env.spec)
                synced.append(env.name)
            except Exception as exc:
                log.warning("sync of %s failed: %s", env.name, exc)
                errors[env.name] = str(exc)
            finally:
                env.op_lock.release()
        return {"synced": synced, "errors": errors}
