"""The parallel-run cost estimate and its price data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from mwaa_iac.core.config import parse_config_text
from mwaa_iac.core.cost import (
    MissingPriceError,
    PriceItem,
    estimate_parallel_run,
    figures_from_price_list,
    load_price_book,
    parse_price_book,
)
from mwaa_iac.errors import ExitCode

REPO = Path(__file__).resolve().parents[2]

BOOK = {
    "currency": "USD",
    "hours_per_month": 730,
    "included": {"classes": {"default": {"schedulers": 2, "workers": 1, "webservers": 2}}},
    "sources": {"test": "numbers made up for the test"},
    "figures": [
        {"region": "r-1", "item": "environment", "class": "mw1.small", "usd": 0.5, "unit": "hour",
         "source": "test", "as_of": "2026-11-23"},
        {"region": "r-1", "item": "worker", "class": "mw1.small", "usd": 0.05, "unit": "hour",
         "source": "test", "as_of": "2026-11-23"},
        {"region": "r-1", "item": "scheduler", "class": "mw1.small", "usd": 0.1, "unit": "hour",
         "source": "test", "as_of": "2026-11-23", "uncertain": True},
        {"region": "r-1", "item": "webserver", "class": "mw1.small", "usd": 0.2, "unit": "hour",
         "source": "test", "as_of": "2026-11-23"},
        {"region": "r-1", "item": "metadata_storage", "class": None, "usd": 0.73, "unit": "GB-month",
         "source": "test", "as_of": "2026-11-23"},
    ],
}  # fmt: skip


def config(example_text: str, **overrides: object):
    text = example_text
    for key, value in overrides.items():
        lines = [ln for ln in text.splitlines() if not ln.startswith(f"{key}:")]
        text = "\n".join([*lines, f"{key}: {value}"]) + "\n"
    return parse_config_text(text)


def test_known_figures_give_the_expected_total(example_text: str) -> None:
    # mw1.small, 3 schedulers (1 extra), workers 1-5 (0-4 extra), web servers 2-3 (0-1 extra), 20 GB.
    cfg = config(example_text, schedulers=3, max_webservers=3)
    estimate = estimate_parallel_run(cfg, parse_price_book(BOOK), hours=10, region="r-1", metadata_gb=20)
    # low: 0.5*10 + 0.1*10 + 0 + 0 + 0.73*20*10/730 = 5 + 1 + 0.2 = 6.20
    # high: + 4*0.05*10 (2.00) + 1*0.2*10 (2.00) = 10.20
    assert estimate.to_dict()["low_usd"] == 6.20
    assert estimate.to_dict()["high_usd"] == 10.20
    assert estimate.uncertain == ["additional scheduler hourly price for mw1.small in r-1"]
    assert estimate.summary() == "$6.20 to $10.20 for 10 h of a second mw1.small environment in r-1"


def test_default_hours_are_the_soak_period(example_text: str) -> None:
    estimate = estimate_parallel_run(config(example_text), load_price_book())
    assert estimate.hours == Decimal(24)  # soak_hours of the example
    data = estimate.to_dict()
    # us-east-1 mw1.small: 0.49 * 24 = 11.76, plus 10 GB of storage for a day (0.03); up to 4 workers more.
    assert data["low_usd"] == 11.79 and data["high_usd"] == 17.07
    assert set(data["sources"]) == {"aws-pricing-page"}


def test_unknown_region_names_the_missing_figures(example_text: str) -> None:
    with pytest.raises(MissingPriceError) as info:
        estimate_parallel_run(config(example_text), load_price_book(), region="eu-west-1")
    assert "environment class hourly price for mw1.small in eu-west-1" in info.value.missing
    assert "additional worker hourly price for mw1.small in eu-west-1" in info.value.missing
    assert "us-east-1" in (info.value.hint or "")


def test_unknown_class_in_a_known_region_is_named(example_text: str) -> None:
    cfg = config(example_text, environment_class="mw1.xlarge", region="us-east-2")
    with pytest.raises(MissingPriceError) as info:
        estimate_parallel_run(cfg, load_price_book())
    assert info.value.missing[0] == "environment class hourly price for mw1.xlarge in us-east-2"


def test_price_data_records_source_region_and_date() -> None:
    raw = json.loads((REPO / "mwaa_iac" / "data" / "prices.json").read_text("utf-8"))
    book = load_price_book()
    keys = set()
    for figure in raw["figures"]:
        assert figure["region"] and figure["source"] in raw["sources"]
        date.fromisoformat(figure["as_of"])
        assert isinstance(figure["uncertain"], bool)
        key = (figure["region"], figure["item"], figure["class"])
        assert key not in keys, f"duplicate figure {key}"
        keys.add(key)
    for cls in ("mw1.micro", "mw1.small", "mw1.medium", "mw1.large", "mw1.xlarge", "mw1.2xlarge"):
        assert book.find("us-east-1", PriceItem.ENVIRONMENT, cls) is not None


def product(attributes: dict[str, str], unit: str, usd: str) -> dict:
    """A PriceList entry in the shape pricing:GetProducts returns (aws_v1)."""
    dimension = {"unit": unit, "pricePerUnit": {"USD": usd}}
    return {
        "product": {"attributes": attributes},
        "terms": {"OnDemand": {"T": {"priceDimensions": {"D": dimension}}}},
    }


PRODUCT = product(
    {
        "size": "Medium",
        "type": "Scheduler",
        "usagetype": "USE1-Airflow-MediumScheduler",
        "regionCode": "us-east-1",
    },
    "Hrs",
    "0.11",
)


def test_price_list_answers_become_figures() -> None:
    storage = product(
        {"type": "Meta Database Storage", "usagetype": "USE1-Airflow-MetaStorage", "regionCode": "us-east-1"},
        "GB-Mo",
        "0.1",
    )
    unknown = {"product": {"attributes": {"type": "Something", "size": "Huge"}}, "terms": {}}
    figures = figures_from_price_list([json.dumps(PRODUCT), storage, unknown], "us-east-1", "2026-11-23")
    assert [(f.item, f.environment_class, f.usd) for f in figures] == [
        (PriceItem.SCHEDULER, "mw1.medium", Decimal("0.11")),
        (PriceItem.METADATA_STORAGE, None, Decimal("0.1")),
    ]
    book = load_price_book().with_figures(figures)
    assert book.find("us-east-1", PriceItem.SCHEDULER, "mw1.medium").source.startswith("AWS Price List API")


def test_live_prices_through_get_products() -> None:
    from mwaa_iac.report.aws import fetch_price_figures

    client = boto3.client(
        "pricing", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    stubber = Stubber(client)
    stubber.add_response(
        "get_products",
        {"PriceList": [json.dumps(PRODUCT)], "FormatVersion": "aws_v1"},
        {
            "ServiceCode": "AmazonMWAA",
            "Filters": [{"Type": "TERM_MATCH", "Field": "regionCode", "Value": "us-east-1"}],
            "FormatVersion": "aws_v1",
        },
    )
    with stubber:
        figures = fetch_price_figures("us-east-1", today=date(2026, 11, 23), client=client)
    assert figures[0].usd == Decimal("0.11") and figures[0].as_of == "2026-11-23"


_RUN_CLI = """
import sys
from mwaa_iac import cli
sys.exit(cli.main(sys.argv[1:]))
"""


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", _RUN_CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_cost(workspace_root: Path) -> None:
    result = run_cli("cost", "--env", "demo", "--hours", "48", "--json", cwd=workspace_root)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["hours"] == 48 and data["low_usd"] == round(0.49 * 48 + 0.1 * 10 * 48 / 730, 2)
    missing = run_cli("cost", "--env", "demo", "--region", "ap-southeast-7", cwd=workspace_root)
    assert missing.returncode == ExitCode.FAILED
    assert "environment class hourly price for mw1.small in ap-southeast-7" in missing.stderr
