"""The generated DR DAG files, loaded by real Airflow (the local stack's version venvs) from a DAG
folder laid out as mwaa-iac deploys it — ``mwaa_iac_dr/`` with the vendored mwaa-dr and smart_open
and the ``.airflowignore`` — in a venv where mwaa-dr is NOT installed: they import mwaa-dr from the
vendor folder (and mwaa-iac's copy module); none of mwaa_dr's own DAG files is parsed; the backup,
the restore and the pre-restore cleanup are one task each. Where the venv does have mwaa-dr, it keeps
its own."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from mwaa_iac.adapters.airflow_venvs import ensure_venv
from mwaa_iac.adapters.dr_bundle import load_bundle
from mwaa_iac.core import dr

pytestmark = pytest.mark.local

PROBE = r"""
import importlib.util, json, os, sys
from pathlib import Path

HIDDEN = ("mwaa_dr", "smart_open")
if sys.argv[2] == "hide":
    # This venv has mwaa-dr installed: make it invisible, as on an environment without it.
    class Hiding:
        def __init__(self, inner):
            self.inner = inner

        def find_spec(self, name, target=None):
            return None if name.split(".")[0] in HIDDEN else self.inner.find_spec(name, target)

        def invalidate_caches(self):
            self.inner.invalidate_caches()

    for entry in [p for p in sys.path if p.endswith("site-packages")]:
        for hook in sys.path_hooks:
            try:
                sys.path_importer_cache[entry] = Hiding(hook(entry))
                break
            except ImportError:
                continue
installed = {m: importlib.util.find_spec(m) is not None for m in HIDDEN}

from airflow.models import DagBag
from airflow.utils.file import list_py_file_paths

root = sys.argv[1]
folder = f"{root}/mwaa_iac_dr"
candidates = list_py_file_paths(root, safe_mode=True, include_examples=False)
bag = DagBag(root, include_examples=False)
spec = importlib.util.spec_from_file_location("restore", f"{folder}/restore_metadata.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
import mwaa_dr, smart_open
os.rename(f"{folder}/.airflowignore", f"{folder}/ignore.off")
unignored = list_py_file_paths(root, safe_mode=True, include_examples=False)
print(json.dumps({
    "installed": installed,
    "errors": {k: str(v)[-300:] for k, v in bag.import_errors.items()},
    "dags": {d.dag_id: {"description": d.description, "tasks": [t.task_id for t in d.tasks],
                        "fileloc": os.path.relpath(d.fileloc, root)}
             for d in bag.dags.values()},
    "parsed": sorted(os.path.relpath(s.file.lstrip("/"), "") for s in bag.dagbag_stats),
    "candidates": sorted(os.path.relpath(p, root) for p in candidates),
    "unignored": sorted(os.path.relpath(p, root) for p in unignored),
    "mwaa_dr": os.path.relpath(mwaa_dr.__file__, root),
    "smart_open": os.path.relpath(smart_open.__file__, root),
    "vendor_on_path": [p for p in sys.path if p.endswith("vendor")],
    "copy_module": os.path.relpath(module.mwaa_iac_copy.__file__, root),
    "factory_tables": [t.name for t in module.factory.tables()],
}))
"""


def _has_mwaa_dr(python: Path) -> bool:
    check = subprocess.run([str(python), "-c", "import mwaa_dr"], capture_output=True, timeout=120)
    return check.returncode == 0


def _deploy(root: Path, files: list[dr.DagFile]) -> None:
    """The DAG folder as mwaa-iac lays it out in S3: vendor bundle, .airflowignore, DAG files."""
    for relative, data in load_bundle().files:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
    for item in files:
        (root / item.relative_path).write_text(item.text)


@pytest.mark.parametrize("version", ["2.9.2", "2.10.3"])
def test_one_task_dr_dags_load_from_the_vendor_folder_with_the_copy_module(
    version: str, tmp_path: Path
) -> None:
    factory = dr.factory_for(version)
    folder = tmp_path / "dags"
    folder.mkdir()
    files = [
        dr.render_backup_dag(factory, "mwaa-dr/t/c1/p1", "t", "p1"),
        dr.render_restore_dag(factory, "mwaa-dr/t/c1/p1", "t", "p1"),
        dr.render_cleanup_dag(factory, "t", "p1"),
        dr.render_prepare_dag("t", "p1"),
        dr.render_probe_dag(factory, "t"),
    ]
    _deploy(folder, files)
    (folder / "user_dag.py").write_text(USER_DAG)
    venv = ensure_venv(version)
    hide = "hide" if _has_mwaa_dr(venv.python) else "as-is"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}",
    }
    probe = subprocess.run(
        [str(venv.python), "-c", PROBE, str(folder), hide],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    assert result["installed"] == {"mwaa_dr": False, "smart_open": False}  # as on MWAA without them
    assert result["errors"] == {}
    # mwaa-dr and smart_open came from the vendor folder, appended to sys.path (once).
    assert result["mwaa_dr"] == "mwaa_iac_dr/vendor/mwaa_dr/__init__.py"
    assert result["smart_open"] == "mwaa_iac_dr/vendor/smart_open/__init__.py"
    assert result["vendor_on_path"] == [str(folder / "mwaa_iac_dr" / "vendor")]
    # .airflowignore: no file of the vendor folder is a DAG candidate or parsed (mwaa_dr ships
    # backup_metadata.py & co. with our DAG ids); without it, mwaa_dr's own DAG files would be.
    assert not [p for p in result["candidates"] + result["parsed"] if "vendor" in p]
    assert "mwaa_iac_dr/vendor/mwaa_dr/backup_metadata.py" in result["unignored"]
    backup, restore, cleanup, prepare, probe_dag = files
    assert {d: v["fileloc"] for d, v in result["dags"].items()} == {
        **{f.dag_id: f.relative_path for f in files},
        "user_dag": "user_dag.py",
    }
    dags = {d: {k: v[k] for k in ("description", "tasks")} for d, v in result["dags"].items()}
    assert dags[backup.dag_id] == {"description": backup.marker, "tasks": ["backup_all_tables"]}
    assert dags[restore.dag_id] == {"description": restore.marker, "tasks": ["restore_all_tables"]}
    assert dags[probe_dag.dag_id] == {"description": probe_dag.marker, "tasks": ["probe"]}
    assert dags[cleanup.dag_id]["description"] == cleanup.marker
    assert dags[prepare.dag_id] == {"description": prepare.marker, "tasks": ["prepare_all_tables"]}
    # mwaa-iac's copy module comes from the vendor folder too; mwaa-dr's factory names the tables.
    assert result["copy_module"] == "mwaa_iac_dr/vendor/mwaa_iac_copy.py"
    assert {"variable", "connection", "dag_run", "task_instance", "xcom"} <= set(result["factory_tables"])


USER_DAG = """
from datetime import datetime

from airflow import DAG
from airflow.operators.empty import EmptyOperator

with DAG("user_dag", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    EmptyOperator(task_id="t")
"""


NOTES = r"""
import json
from airflow.models import DagRun
from airflow.settings import Session

with Session() as session:
    print(json.dumps({r.run_id: [r.state, r.note] for r in session.query(DagRun).all()}))
"""


def test_probe_dag_writes_reads_and_deletes_with_the_vendored_smart_open(tmp_path: Path) -> None:
    """The preflight probe on real Airflow 2.9.2 without mwaa-dr installed, against moto's S3: it
    imports the factory from the vendor folder, writes, reads back and deletes its object, and
    leaves its result in the run's note (what mwaa-iac reads); with no such bucket it fails and the
    note carries the S3 error."""
    import boto3
    from moto.server import ThreadedMotoServer

    folder = tmp_path / "dags"
    folder.mkdir()
    _deploy(folder, [dr.render_probe_dag("DRFactory_2_9", "t")])
    venv = ensure_venv("2.9.2")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        aws = {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        s3 = boto3.client(
            "s3",
            endpoint_url=aws["AWS_ENDPOINT_URL"],
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket="dr-bucket")
        env = {
            **os.environ,
            **aws,
            "AIRFLOW_HOME": str(tmp_path / "home"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}",
        }

        def airflow(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [str(venv.python), "-m", "airflow", *args],
                capture_output=True,
                text=True,
                env=env,
                timeout=300,
            )

        assert airflow("db", "migrate").returncode == 0
        ok = airflow(
            "dags",
            "test",
            dr.PROBE_DAG_ID,
            "--conf",
            json.dumps(dr.probe_conf("dr-bucket", "mwaa-dr", "t", "p1")),
        )
        assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-2000:]
        bad = airflow(
            "dags", "test", dr.PROBE_DAG_ID, "--conf", json.dumps({"bucket": "missing-bucket", "key": "k"})
        )
        assert bad.returncode != 0
        notes = subprocess.run(
            [str(venv.python), "-c", NOTES], capture_output=True, text=True, env=env, timeout=120
        )
        runs = sorted(
            json.loads(notes.stdout.strip().splitlines()[-1]).values(), key=lambda r: r[0] != "success"
        )
        assert s3.list_objects_v2(Bucket="dr-bucket").get("KeyCount") == 0  # written, read back, deleted
    finally:
        server.stop()
    (ok_state, ok_note), (bad_state, bad_note) = runs
    ok_result, bad_result = json.loads(ok_note), json.loads(bad_note)
    assert ok_state == "success" and ok_result["ok"] is True and ok_result["deleted"] is True
    assert ok_result["mwaa_dr"].endswith("mwaa_iac_dr/vendor/mwaa_dr")
    assert ok_result["uri"] == "s3://dr-bucket/mwaa-dr/t/probe/p1/probe.txt"
    assert bad_state == "failed" and bad_result["stage"] == "s3" and "missing-bucket" in bad_result["error"]


LAGGING = r"""
import json, runpy, sys, threading, time
from types import SimpleNamespace

path, newer, wanted = sys.argv[1], sys.argv[2], sys.argv[3]
older = runpy.run_path(path)  # what a lagging worker has loaded: the previous version of the file


def sync_later():
    time.sleep(3)
    with open(path, "w", encoding="utf-8") as out:
        out.write(open(newer, encoding="utf-8").read())


threading.Thread(target=sync_later).start()
context = {"dag_run": SimpleNamespace(conf={"bucket": "b", "mwaa_iac_marker": wanted})}
started = time.monotonic()
fresh = older["_this_version"](context)
waited = time.monotonic() - started
current = older["_this_version"]({"dag_run": SimpleNamespace(conf={"mwaa_iac_marker": older["MARKER"]})})
try:  # the task body fails here (no database, no bucket): never retried
    fresh["backup_all_tables"](**context)
    failure = None
except Exception as exc:
    failure = type(exc).__name__
print(json.dumps({"older": older["MARKER"], "fresh": fresh["MARKER"], "prefix": fresh["factory"].path_prefix,
                  "waited": waited, "current": current, "failure": failure,
                  "retries": fresh["dag"].get_task("backup_all_tables").retries}))
"""


def test_a_worker_with_an_older_dag_file_waits_for_the_version_the_run_names(tmp_path: Path) -> None:
    """Workers sync the DAG folder on their own: a backup task started on a worker that still holds
    the previous pass's file (another path_prefix) waits until its copy is the version the run's conf
    names, and runs that one. A failure inside the task is not retried (AirflowFailException); the
    task's retries cover only a worker that does not have the file yet."""
    folder = tmp_path / "dags"
    folder.mkdir()
    older = dr.render_backup_dag("DRFactory_2_9", "mwaa-dr/t/c1/p1", "t", "p1")
    newer = dr.render_backup_dag("DRFactory_2_9", "mwaa-dr/t/c1/p2", "t", "p2")
    _deploy(folder, [older])
    (tmp_path / "newer.py").write_text(newer.text)
    venv = ensure_venv("2.9.2")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}",
    }
    run = subprocess.run(
        [str(venv.python), "-c", LAGGING, str(folder / older.relative_path), str(tmp_path / "newer.py"),
         newer.marker],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["older"] == older.marker and result["fresh"] == newer.marker
    assert result["prefix"] == "mwaa-dr/t/c1/p2" and result["waited"] >= 2.5
    assert result["current"] is None  # the right version runs as it is
    assert result["failure"] == "AirflowFailException" and result["retries"] == 4
