"""The AWS calls of the report and the cost estimate: GetEnvironment of both colours, and the AWS Price
List API for live prices. Standard boto3 credential and endpoint resolution (``AWS_PROFILE``,
``AWS_ENDPOINT_URL_MWAA``, ...). Nothing here raises for an AWS problem: the live state comes back
with the reason it could not be read, because a pull-request report must still be posted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from mwaa_iac.adapters import aws
from mwaa_iac.core.config import Color, EnvironmentConfig
from mwaa_iac.core.cost import PriceFigure, figures_from_price_list
from mwaa_iac.errors import AwsError

CONNECT_TIMEOUT = 5
READ_TIMEOUT = 15
MAX_ATTEMPTS = 2
# The Price List API answers only in a few regions; us-east-1 serves every region's prices.
PRICING_REGION = "us-east-1"


@dataclass(frozen=True)
class LiveEnvironment:
    """One colour's environment as GetEnvironment describes it (``exists`` False: not found)."""

    color: str
    name: str
    exists: bool
    status: str | None = None
    airflow_version: str | None = None
    environment_class: str | None = None
    last_update_status: str | None = None
    last_update_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "color": self.color,
            "name": self.name,
            "exists": self.exists,
            "status": self.status,
            "airflow_version": self.airflow_version,
            "environment_class": self.environment_class,
            "last_update_status": self.last_update_status,
            "last_update_error": self.last_update_error,
        }


@dataclass(frozen=True)
class LiveState:
    """What is live. ``read`` False: it could not be read, and ``error`` says why."""

    read: bool
    error: str | None = None
    environments: tuple[LiveEnvironment, ...] = ()
    skipped: bool = False  # not attempted (--no-live), as opposed to failed

    def get(self, color: Color) -> LiveEnvironment | None:
        for env in self.environments:
            if env.color == str(color):
                return env
        return None

    def message(self) -> str:
        if self.skipped:
            return f"live state not read: {self.error}"
        if not self.read:
            return f"live state could not be read: {self.error}"
        parts = []
        for env in self.environments:
            if env.exists:
                parts.append(f"{env.name}: {env.status}, Airflow {env.airflow_version}")
            else:
                parts.append(f"{env.name}: not found")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "skipped": self.skipped,
            "error": self.error,
            "message": self.message(),
            "environments": [e.to_dict() for e in self.environments],
        }


def not_read(reason: str) -> LiveState:
    return LiveState(False, reason)


def explain_aws_error(exc: BaseException) -> str:
    """Why the live state could not be read, and what to do (see :func:`mwaa_iac.adapters.aws.explain`)."""
    return aws.explain(exc, needs="airflow:GetEnvironment", otherwise="pass --no-live")


def _client(service: str, region: str, session: Any = None) -> Any:
    return aws.client(
        service,
        region,
        session=session,
        fresh_session=True,
        max_attempts=MAX_ATTEMPTS,
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
    )


def mwaa_client(region: str, session: Any = None) -> Any:
    """An MWAA client with the report's short timeouts and few retries (the sizing's counts)."""
    return _client("mwaa", region, session)


def read_live_state(config: EnvironmentConfig, *, client: Any = None, session: Any = None) -> LiveState:
    """GetEnvironment of ``<name>-blue`` and ``<name>-green``. Never raises for AWS problems."""
    from botocore import exceptions as bce

    try:
        mwaa = client or _client("mwaa", config.region, session)
    except (bce.BotoCoreError, ValueError) as exc:
        return not_read(explain_aws_error(exc))
    environments = []
    for color in Color:
        name = config.environment_name(color)
        try:
            env = mwaa.get_environment(Name=name)["Environment"]
        except bce.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                environments.append(LiveEnvironment(str(color), name, False))
                continue
            return not_read(explain_aws_error(exc))
        except bce.BotoCoreError as exc:
            return not_read(explain_aws_error(exc))
        last = env.get("LastUpdate") or {}
        error = last.get("Error") or {}
        environments.append(
            LiveEnvironment(
                str(color),
                name,
                True,
                env.get("Status"),
                env.get("AirflowVersion"),
                env.get("EnvironmentClass"),
                last.get("Status"),
                ": ".join(x for x in (error.get("ErrorCode"), error.get("ErrorMessage")) if x) or None,
            )
        )
    return LiveState(True, None, tuple(environments))


def fetch_price_figures(
    region: str, *, today: date | None = None, client: Any = None, session: Any = None
) -> list[PriceFigure]:
    """Current MWAA prices for ``region`` from the AWS Price List API (``pricing:GetProducts``).
    Raises AwsError when the API cannot be read."""
    from botocore import exceptions as bce

    as_of = (today or date.today()).isoformat()
    try:
        pricing = client or _client("pricing", PRICING_REGION, session)
        paginator = pricing.get_paginator("get_products")
        entries: list[str] = []
        pages = paginator.paginate(
            ServiceCode="AmazonMWAA",
            Filters=[{"Type": "TERM_MATCH", "Field": "regionCode", "Value": region}],
            FormatVersion="aws_v1",
        )
        for page in pages:
            entries.extend(page.get("PriceList", []))
    except (bce.BotoCoreError, bce.ClientError) as exc:
        raise AwsError(
            f"live prices could not be read from the AWS Price List API: {explain_aws_error(exc)}",
            hint="the caller needs pricing:GetProducts; without --live the packaged figures are used",
        ) from exc
    figures = figures_from_price_list(entries, region, as_of)
    if not figures:
        raise AwsError(
            f"the AWS Price List API returned no MWAA prices for {region}",
            hint="check the region name; without --live the packaged figures are used",
        )
    return figures
