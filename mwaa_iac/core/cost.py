"""What running both colours costs: the extra MWAA environment of a cutover, for its soak period.

Pure: prices come from ``data/prices.json`` (or from figures the caller read live from the AWS Price
List API, parsed here by :func:`figures_from_price_list`), the environment's shape from its config.
The extra cost of a cutover is one more environment of the same shape: its class's hourly price plus
the schedulers, workers and web servers beyond those the class includes, plus metadata storage.
Workers and web servers scale between their minimum and maximum, so the estimate is a range.

A figure that is not in the price book is never guessed: :class:`MissingPriceError` names it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from typing import Any

from mwaa_iac.core.config import EnvironmentConfig
from mwaa_iac.errors import MwaaIacError

DEFAULT_METADATA_GB = 10.0
"""Metadata database size assumed when none is given (GB); MWAA bills the storage used."""

_CENT = Decimal("0.01")
ONE = Decimal(1)


class PriceItem(StrEnum):
    ENVIRONMENT = "environment"
    SCHEDULER = "scheduler"
    WORKER = "worker"
    WEBSERVER = "webserver"
    METADATA_STORAGE = "metadata_storage"


_ITEM_LABELS = {
    PriceItem.ENVIRONMENT: "environment class hourly price",
    PriceItem.SCHEDULER: "additional scheduler hourly price",
    PriceItem.WORKER: "additional worker hourly price",
    PriceItem.WEBSERVER: "additional web server hourly price",
    PriceItem.METADATA_STORAGE: "metadata database storage price (per GB-month)",
}


class MissingPriceError(MwaaIacError):
    """The price book has no figure for something the estimate needs. ``missing`` names each one."""

    def __init__(self, missing: list[str], *, hint: str | None = None) -> None:
        self.missing = missing
        count = len(missing)
        head = f"{count} price figure{'s are' if count != 1 else ' is'} missing, so no estimate is given"
        super().__init__(head + ":\n" + "\n".join(f"  - {m}" for m in missing), hint=hint)


@dataclass(frozen=True)
class PriceFigure:
    """One price: ``usd`` per ``unit`` (``hour`` or ``GB-month``) of ``item`` in ``region``."""

    region: str
    item: PriceItem
    environment_class: str | None  # None for metadata storage
    usd: Decimal
    unit: str
    source: str
    as_of: str
    uncertain: bool = False

    @property
    def label(self) -> str:
        what = _ITEM_LABELS[self.item]
        cls = f" for {self.environment_class}" if self.environment_class else ""
        return f"{what}{cls} in {self.region}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "item": str(self.item),
            "class": self.environment_class,
            "usd": float(self.usd),
            "unit": self.unit,
            "source": self.source,
            "as_of": self.as_of,
            "uncertain": self.uncertain,
        }


@dataclass(frozen=True)
class Included:
    """Instances an environment class's hourly price includes."""

    schedulers: int
    workers: int
    webservers: int


@dataclass(frozen=True)
class PriceBook:
    figures: tuple[PriceFigure, ...]
    included: dict[str, Included]
    included_uncertain: bool
    sources: dict[str, str]
    hours_per_month: int = 730
    currency: str = "USD"

    def find(self, region: str, item: PriceItem, environment_class: str | None) -> PriceFigure | None:
        cls = None if item is PriceItem.METADATA_STORAGE else environment_class
        for figure in self.figures:
            if figure.region == region and figure.item is item and figure.environment_class == cls:
                return figure
        return None

    def included_for(self, environment_class: str) -> Included:
        return self.included.get(environment_class) or self.included["default"]

    def regions(self) -> list[str]:
        return sorted({f.region for f in self.figures})

    def source_text(self, key: str) -> str:
        return self.sources.get(key, key)

    def with_figures(self, figures: list[PriceFigure]) -> PriceBook:
        """A copy where ``figures`` replace the book's figures for the same region/item/class."""
        keys = {(f.region, f.item, f.environment_class) for f in figures}
        kept = tuple(f for f in self.figures if (f.region, f.item, f.environment_class) not in keys)
        return replace(self, figures=kept + tuple(figures))


def parse_price_book(data: dict[str, Any]) -> PriceBook:
    """Build a :class:`PriceBook` from the structure of ``data/prices.json``."""
    figures = tuple(
        PriceFigure(
            region=raw["region"],
            item=PriceItem(raw["item"]),
            environment_class=raw.get("class"),
            usd=Decimal(str(raw["usd"])),
            unit=raw["unit"],
            source=raw["source"],
            as_of=raw["as_of"],
            uncertain=bool(raw.get("uncertain", False)),
        )
        for raw in data["figures"]
    )
    included_raw = data["included"]
    included = {
        cls: Included(int(v["schedulers"]), int(v["workers"]), int(v["webservers"]))
        for cls, v in included_raw["classes"].items()
    }
    return PriceBook(
        figures=figures,
        included=included,
        included_uncertain=bool(included_raw.get("uncertain", False)),
        sources=dict(data.get("sources", {})),
        hours_per_month=int(data.get("hours_per_month", 730)),
        currency=str(data.get("currency", "USD")),
    )


@lru_cache(maxsize=1)
def load_price_book() -> PriceBook:
    """The packaged price book (cached)."""
    text = resources.files("mwaa_iac.data").joinpath("prices.json").read_text("utf-8")
    return parse_price_book(json.loads(text))


# --------------------------------------------------------------------------------------------------
# Estimate
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CostLine:
    """One part of the estimate: ``quantity_low``..``quantity_high`` units for ``hours``."""

    item: PriceItem
    description: str
    quantity_low: Decimal
    quantity_high: Decimal
    figure: PriceFigure | None  # None when the quantity is zero and no figure was needed
    low_usd: Decimal
    high_usd: Decimal

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": str(self.item),
            "description": self.description,
            "quantity_low": float(self.quantity_low),
            "quantity_high": float(self.quantity_high),
            "unit_price_usd": float(self.figure.usd) if self.figure else None,
            "unit": self.figure.unit if self.figure else None,
            "source": self.figure.source if self.figure else None,
            "as_of": self.figure.as_of if self.figure else None,
            "uncertain": self.figure.uncertain if self.figure else False,
            "low_usd": _money(self.low_usd),
            "high_usd": _money(self.high_usd),
        }


@dataclass(frozen=True)
class CostEstimate:
    """The extra cost of a second environment of the same shape for ``hours``."""

    region: str
    environment_class: str
    hours: Decimal
    metadata_gb: Decimal
    lines: tuple[CostLine, ...]
    assumptions: tuple[str, ...]
    currency: str = "USD"
    sources: tuple[tuple[str, str], ...] = ()  # (key, description) of the sources the lines cite

    @property
    def low_usd(self) -> Decimal:
        return sum((line.low_usd for line in self.lines), Decimal(0))

    @property
    def high_usd(self) -> Decimal:
        return sum((line.high_usd for line in self.lines), Decimal(0))

    @property
    def uncertain(self) -> list[str]:
        """Labels of the figures used that are marked uncertain."""
        return [
            line.figure.label
            for line in self.lines
            if line.figure is not None and line.figure.uncertain and line.quantity_high > 0
        ]

    def summary(self) -> str:
        low, high = _money(self.low_usd), _money(self.high_usd)
        amount = f"${low:,.2f}" if low == high else f"${low:,.2f} to ${high:,.2f}"
        hours = _number(self.hours)
        return f"{amount} for {hours} h of a second {self.environment_class} environment in {self.region}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "environment_class": self.environment_class,
            "hours": float(self.hours),
            "metadata_gb": float(self.metadata_gb),
            "currency": self.currency,
            "low_usd": _money(self.low_usd),
            "high_usd": _money(self.high_usd),
            "summary": self.summary(),
            "lines": [line.to_dict() for line in self.lines],
            "uncertain_figures": self.uncertain,
            "assumptions": list(self.assumptions),
            "sources": dict(self.sources),
        }


def estimate_parallel_run(
    config: EnvironmentConfig,
    book: PriceBook,
    *,
    hours: float | Decimal | None = None,
    region: str | None = None,
    metadata_gb: float | Decimal = DEFAULT_METADATA_GB,
) -> CostEstimate:
    """The extra cost of running a second environment shaped like ``config`` for ``hours``
    (default: the config's ``soak_hours``) in ``region`` (default: the config's region).

    Raises :class:`MissingPriceError` naming every figure the book lacks.
    """
    region = region or config.region
    cls = config.environment_class
    hours_d = Decimal(str(config.soak_hours if hours is None else hours))
    gb = Decimal(str(metadata_gb))
    if hours_d < 0 or gb < 0:
        raise MwaaIacError("hours and metadata size must not be negative")
    included = book.included_for(cls)

    wanted: list[tuple[PriceItem, str, Decimal, Decimal]] = [
        (PriceItem.ENVIRONMENT, f"{cls} environment ({_includes(included)} included)", ONE, ONE),
        (
            PriceItem.SCHEDULER,
            f"schedulers beyond the {included.schedulers} included ({config.schedulers} configured)",
            Decimal(max(0, config.schedulers - included.schedulers)),
            Decimal(max(0, config.schedulers - included.schedulers)),
        ),
        (
            PriceItem.WORKER,
            f"workers beyond the {included.workers} included "
            f"({config.min_workers}-{config.max_workers} configured)",
            Decimal(max(0, config.min_workers - included.workers)),
            Decimal(max(0, config.max_workers - included.workers)),
        ),
        (
            PriceItem.WEBSERVER,
            f"web servers beyond the {included.webservers} included "
            f"({config.min_webservers}-{config.max_webservers} configured)",
            Decimal(max(0, config.min_webservers - included.webservers)),
            Decimal(max(0, config.max_webservers - included.webservers)),
        ),
    ]
    missing: list[str] = []
    lines: list[CostLine] = []
    for item, description, low_qty, high_qty in wanted:
        figure = book.find(region, item, cls)
        if high_qty == 0:
            zero = Decimal(0)
            lines.append(CostLine(item, description, low_qty, high_qty, figure, zero, zero))
            continue
        if figure is None:
            missing.append(f"{_ITEM_LABELS[item]} for {cls} in {region}")
            continue
        low_usd = figure.usd * low_qty * hours_d
        high_usd = figure.usd * high_qty * hours_d
        lines.append(CostLine(item, description, low_qty, high_qty, figure, low_usd, high_usd))
    storage = book.find(region, PriceItem.METADATA_STORAGE, None)
    if gb > 0 and storage is None:
        missing.append(f"{_ITEM_LABELS[PriceItem.METADATA_STORAGE]} in {region}")
    elif storage is not None or gb == 0:
        months = hours_d / Decimal(book.hours_per_month)
        amount = (storage.usd if storage else Decimal(0)) * gb * months
        lines.append(
            CostLine(
                PriceItem.METADATA_STORAGE,
                f"metadata database storage ({_number(gb)} GB for {_number(hours_d)} h)",
                gb,
                gb,
                storage,
                amount,
                amount,
            )
        )
    if missing:
        known = ", ".join(book.regions()) or "none"
        raise MissingPriceError(
            missing,
            hint=f"regions with figures: {known}. Add the figures to mwaa_iac/data/prices.json "
            "(with their source and date) or read them from the AWS Price List API with --live",
        )
    assumptions = [
        "the second environment has the same class and scaling settings as the first",
        "low: workers and web servers at their minimum; high: at their maximum for the whole period",
        f"metadata storage assumed {_number(gb)} GB (MWAA bills the storage used)",
    ]
    if book.included_uncertain:
        assumptions.append(
            f"included instances per environment ({_includes(included)}) are recorded as uncertain"
        )
    cited = sorted({line.figure.source for line in lines if line.figure is not None})
    sources = tuple((key, book.source_text(key)) for key in cited)
    return CostEstimate(region, cls, hours_d, gb, tuple(lines), tuple(assumptions), book.currency, sources)


def _includes(included: Included) -> str:
    return (
        f"{included.schedulers} scheduler{'s' if included.schedulers != 1 else ''}, "
        f"{included.workers} worker{'s' if included.workers != 1 else ''}, "
        f"{included.webservers} web server{'s' if included.webservers != 1 else ''}"
    )


def _money(value: Decimal) -> float:
    return float(value.quantize(_CENT, rounding=ROUND_HALF_UP))


def _number(value: Decimal) -> str:
    return format(value.normalize(), "f")


# --------------------------------------------------------------------------------------------------
# AWS Price List API (pricing:GetProducts) answers
# --------------------------------------------------------------------------------------------------

_TYPE_ITEMS = {
    "environment": PriceItem.ENVIRONMENT,
    "scheduler": PriceItem.SCHEDULER,
    "worker": PriceItem.WORKER,
    "webserver": PriceItem.WEBSERVER,
}


def figures_from_price_list(
    price_list: Sequence[str | dict[str, Any]], region: str, as_of: str
) -> list[PriceFigure]:
    """Turn the ``PriceList`` entries of ``pricing:GetProducts`` (service code ``AmazonMWAA``) into
    figures. Products this version does not recognise are skipped, never guessed."""
    figures: list[PriceFigure] = []
    for entry in price_list:
        product = json.loads(entry) if isinstance(entry, str) else entry
        attributes = product.get("product", {}).get("attributes", {})
        if attributes.get("regionCode", region) != region:
            continue
        usd, unit = _on_demand_usd(product.get("terms", {}))
        if usd is None:
            continue
        kind = str(attributes.get("type", "")).replace(" ", "").replace("-", "").lower()
        usage = str(attributes.get("usagetype", "")).lower()
        if "storage" in kind or "storage" in usage or "database" in kind:
            item: PriceItem | None = PriceItem.METADATA_STORAGE
            cls = None
            unit_text = "GB-month"
        else:
            item = _TYPE_ITEMS.get(kind)
            cls = _class_from_size(str(attributes.get("size", "")))
            unit_text = "hour"
            if item is None or cls is None or not unit.lower().startswith("hr"):
                continue
        if item is None:  # a storage price always names its item; the check is for the type checker
            continue
        figures.append(
            PriceFigure(region, item, cls, usd, unit_text, "AWS Price List API (pricing:GetProducts)", as_of)
        )
    return figures


def _on_demand_usd(terms: dict[str, Any]) -> tuple[Decimal | None, str]:
    for term in terms.get("OnDemand", {}).values():
        for dimension in term.get("priceDimensions", {}).values():
            text = dimension.get("pricePerUnit", {}).get("USD")
            if text is None:
                continue
            try:
                return Decimal(str(text)).normalize(), str(dimension.get("unit", ""))
            except ArithmeticError:
                continue
    return None, ""


def _class_from_size(size: str) -> str | None:
    text = size.strip().lower().replace(" ", "").replace("-", "")
    if text in {"micro", "small", "medium", "large", "xlarge", "2xlarge"}:
        return f"mw1.{text}"
    return None
