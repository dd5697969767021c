"""Environment records on disk: one JSON file per environment, written atomically on every change."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RECORD_FORMAT = 1


class EnvironmentStore:
    """``<root>/environments/<account>/<region>/<name>.json``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, account: str, region: str, name: str) -> Path:
        return self.root / "environments" / account / region / f"{name}.json"

    def save(self, record: dict[str, Any]) -> None:
        path = self._path(record["account"], record["region"], record["name"])
        path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"format": RECORD_FORMAT, **record}, indent=2, sort_keys=True, default=str)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def delete(self, account: str, region: str, name: str) -> None:
        self._path(account, region, name).unlink(missing_ok=True)

    def load_all(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        base = self.root / "environments"
        if not base.is_dir():
            return records
        for path in sorted(base.glob("*/*/*.json")):
            try:
                record = json.loads(path.read_text("utf-8"))
            except (OSError, ValueError) as exc:
                log.error("ignoring unreadable environment record %s: %s", path, exc)
                continue
            if record.get("format") != RECORD_FORMAT:
                log.error("ignoring environment record %s with unknown format %r", path, record.get("format"))
                continue
            records.append(record)
        return records
