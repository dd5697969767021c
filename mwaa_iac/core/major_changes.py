"""What changes under a user's feet in a 2 → 3 move besides DAG code (issue 24): the Python version,
plugins, configuration options renamed or removed in 3.0 that the environment sets, the REST API's
``/api/v1`` callers, tasks that use the metadata database. Pure: the environment's GetEnvironment
answer and the catalog in, warnings out (preflight checks that do not block).

The renamed and removed options are those Airflow 3.0's ``airflow config update`` moves or drops
that an MWAA user is likely to set; the list is not exhaustive (``airflow config lint`` on the
rehearsal names the rest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mwaa_iac.core.catalog import Catalog, load_catalog, parse_version

RENAMED_IN_3: dict[str, str] = {
    "scheduler.dag_dir_list_interval": "dag_processor.refresh_interval",
    "scheduler.min_file_process_interval": "dag_processor.min_file_process_interval",
    "scheduler.parsing_processes": "dag_processor.parsing_processes",
    "scheduler.file_parsing_sort_mode": "dag_processor.file_parsing_sort_mode",
    "scheduler.stale_dag_threshold": "dag_processor.stale_dag_threshold",
    "core.dag_file_processor_timeout": "dag_processor.dag_file_processor_timeout",
    "webserver.secret_key": "api.secret_key",
    "webserver.web_server_port": "api.port",
    "webserver.workers": "api.workers",
    "webserver.expose_config": "api.expose_config",
    "webserver.base_url": "api.base_url",
}
REMOVED_IN_3: dict[str, str] = {
    "core.check_slas": "SLAs were removed in Airflow 3.0",
    "smtp.smtp_user": "use an SMTP connection instead",
    "smtp.smtp_password": "use an SMTP connection instead",
}


@dataclass(frozen=True)
class Change:
    name: str  # python | plugins | configuration | rest-api | metadata-database
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "detail": self.detail}


def major_changes(
    source_version: str, target_version: str, environment: dict[str, Any], catalog: Catalog | None = None
) -> list[Change]:
    """What a 2.x → 3.x move changes beyond DAG code, for ``environment`` (GetEnvironment's
    answer); empty for any other move."""
    try:
        if not (parse_version(source_version)[0] == 2 and parse_version(target_version)[0] == 3):
            return []
    except ValueError:
        return []
    catalog = catalog or load_catalog()
    source, target = catalog.get(source_version), catalog.get(target_version)
    changes: list[Change] = []
    if source is not None and target is not None and source.python != target.python:
        changes.append(
            Change(
                "python",
                f"Python {source.python} → {target.python}: every package in requirements.txt must exist "
                f"for {target.python} (the requirements check resolves them against {target_version}'s "
                "constraints)",
            )
        )
    if environment.get("PluginsS3Path"):
        changes.append(
            Change(
                "plugins",
                f"plugins ({environment['PluginsS3Path']}) load into Airflow 3: Flask-AppBuilder views, "
                "menu links and blueprints need the FAB provider, and operators or hooks imported from "
                "airflow.operators/airflow.hooks moved to providers",
            )
        )
    options = environment.get("AirflowConfigurationOptions") or {}
    renamed = [f"{old} → {new}" for old, new in RENAMED_IN_3.items() if old in options]
    removed = [f"{old} ({why})" for old, why in REMOVED_IN_3.items() if old in options]
    if renamed or removed:
        parts = []
        if renamed:
            parts.append("renamed: " + ", ".join(renamed))
        if removed:
            parts.append("removed: " + ", ".join(removed))
        changes.append(
            Change(
                "configuration",
                "AirflowConfigurationOptions set options Airflow 3 moved or dropped: " + "; ".join(parts),
            )
        )
    changes.append(
        Change(
            "rest-api",
            "the REST API is /api/v2 in Airflow 3 (/api/v1 is gone, and answers redact connection "
            "passwords and sensitive variables): scripts and CI that call /api/v1, through "
            "InvokeRestApi or the web server, must move",
        )
    )
    changes.append(
        Change(
            "metadata-database",
            "Airflow 3 tasks cannot use the metadata database (airflow.settings.Session, "
            "@provide_session, models queried in task code): such tasks fail on 3.x; "
            "`mwaa-iac check dags --import` and the rehearsal find the DAG files that do not import",
        )
    )
    return changes
