"""The catalog of Apache Airflow versions that Amazon MWAA offers (data in ``data/versions.json``)."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import date
from functools import lru_cache
from importlib import resources
from typing import Any

from mwaa_iac.errors import UsageError

VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def parse_version(text: str) -> tuple[int, int, int]:
    """``"2.10.3"`` → ``(2, 10, 3)``; raises ValueError for anything that is not MAJOR.MINOR.PATCH."""
    match = VERSION_RE.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"{text!r} is not a version of the form MAJOR.MINOR.PATCH (for example 2.10.3)")
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


def major_of(version: str) -> int:
    """``"2.10.3"`` → ``2`` (ValueError as :func:`parse_version`)."""
    return parse_version(version)[0]


def major_minor(version: str) -> tuple[int, int]:
    """``"2.10.3"`` → ``(2, 10)`` (ValueError as :func:`parse_version`)."""
    major, minor, _ = parse_version(version)
    return major, minor


@dataclass(frozen=True)
class AirflowVersion:
    """One Airflow version as MWAA offers it."""

    version: str
    python: str
    available: date
    end_of_support: date | None
    mwaa_dr: bool
    available_approximate: bool = False

    @property
    def key(self) -> tuple[int, int, int]:
        return parse_version(self.version)

    @property
    def major(self) -> int:
        return self.key[0]

    @property
    def minor_series(self) -> str:
        major, minor, _ = self.key
        return f"{major}.{minor}"

    @property
    def dr_factory(self) -> str | None:
        """The mwaa-dr factory class for this version (``DRFactory_2_10``), or None if unsupported."""
        major, minor, _ = self.key
        return f"DRFactory_{major}_{minor}" if self.mwaa_dr else None

    def is_supported(self, today: date) -> bool:
        """Whether MWAA still accepts new environments and upgrades *to* this version on ``today``."""
        return self.end_of_support is None or today < self.end_of_support

    def to_dict(self, today: date | None = None) -> dict[str, Any]:
        data = asdict(self)
        data["available"] = self.available.isoformat()
        data["end_of_support"] = self.end_of_support.isoformat() if self.end_of_support else None
        data["dr_factory"] = self.dr_factory
        if today is not None:
            data["supported"] = self.is_supported(today)
        return data


@dataclass(frozen=True)
class Catalog:
    """All known versions, oldest first."""

    versions: tuple[AirflowVersion, ...]
    checked: str
    mwaa_dr_version: str

    def get(self, version: str) -> AirflowVersion | None:
        for item in self.versions:
            if item.version == version:
                return item
        return None

    def require(self, version: str) -> AirflowVersion:
        """The version, or a UsageError that lists what MWAA offers."""
        item = self.get(version)
        if item is None:
            try:
                parse_version(version)
            except ValueError as exc:
                raise UsageError(str(exc), hint=f"Known versions: {', '.join(self.names())}") from None
            raise UsageError(
                f"Airflow {version} is not a version Amazon MWAA offers",
                hint=f"Known versions: {', '.join(self.names())} (see `mwaa-iac versions list`)",
            )
        return item

    def names(self) -> list[str]:
        return [v.version for v in self.versions]

    def supported(self, today: date) -> list[AirflowVersion]:
        return [v for v in self.versions if v.is_supported(today)]

    def latest_in_series(self, major: int, today: date, minor: int | None = None) -> AirflowVersion | None:
        """Newest supported version of ``major`` (and ``minor`` when given)."""
        candidates = [
            v
            for v in self.versions
            if v.key[0] == major and (minor is None or v.key[1] == minor) and v.is_supported(today)
        ]
        return max(candidates, key=lambda v: v.key, default=None)


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """Load the packaged catalog (cached)."""
    raw = json.loads(resources.files("mwaa_iac.data").joinpath("versions.json").read_text("utf-8"))
    items = tuple(
        sorted(
            (
                AirflowVersion(
                    version=v["version"],
                    python=v["python"],
                    available=date.fromisoformat(v["available"]),
                    end_of_support=_date(v.get("end_of_support")),
                    mwaa_dr=bool(v["mwaa_dr"]),
                    available_approximate=bool(v.get("available_approximate", False)),
                )
                for v in raw["versions"]
            ),
            key=lambda v: v.key,
        )
    )
    return Catalog(versions=items, checked=raw["checked"], mwaa_dr_version=raw["mwaa_dr_version"])
