"""The environment configuration (``environments/<env>/mwaa.yaml``) and its validation.

The models are pure; :func:`load_config` reads a file and turns every problem (YAML syntax, unknown
key, bad value) into one :class:`~mwaa_iac.errors.ConfigError` listing each problem with the file,
the key and what is allowed. Nothing else may escape it.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mwaa_iac.core.catalog import parse_version
from mwaa_iac.core.planner import Strategy
from mwaa_iac.errors import ConfigError, ConfigProblem

CONFIG_FILENAME = "mwaa.yaml"
COLOR_SUFFIX_MAX = len("-green")
NAME_MAX = 80 - COLOR_SUFFIX_MAX
NAME_RE = re.compile(r"^[a-zA-Z][0-9a-zA-Z_-]*$")
ENVIRONMENT_CLASSES = ("mw1.micro", "mw1.small", "mw1.medium", "mw1.large", "mw1.xlarge", "mw1.2xlarge")
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
REGION_RE = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
CONFIG_KEY_RE = re.compile(r"^[a-z]+([a-z0-9._]*[a-z0-9_]+)?$")
BUCKET_ARN_RE = re.compile(r"^arn:aws(-[a-z]+)?:s3:::[a-z0-9.\-]+$")
BUCKET_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
ROLE_ARN_RE = re.compile(r"^arn:aws(-[a-z]+)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-/]+$")
WINDOW_RE = re.compile(r"^(MON|TUE|WED|THU|FRI|SAT|SUN):([01]\d|2[0-3]):(00|30)$")
SSM_NAME_RE = re.compile(r"^(/[a-zA-Z0-9_.\-]+)+$|^[a-zA-Z0-9_.\-]{1,1011}$")


class Color(StrEnum):
    BLUE = "blue"
    GREEN = "green"

    @property
    def other(self) -> Color:
        return Color.GREEN if self is Color.BLUE else Color.BLUE


class _Model(BaseModel):
    # A docstring under a field is its description in the JSON schema (the generated mwaa.yaml
    # reference of the documentation site).
    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, use_attribute_docstrings=True
    )


def _check_version(value: str) -> str:
    parse_version(value)
    return value


class Network(_Model):
    subnet_ids: list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]+$")]] = Field(
        description="Exactly 2 private subnets in different Availability Zones (create-only).",
    )
    security_group_ids: list[Annotated[str, Field(pattern=r"^sg-[0-9a-f]+$")]] = Field(
        description="1 to 5 security groups.",
    )

    @field_validator("subnet_ids")
    @classmethod
    def _two_subnets(cls, value: list[str]) -> list[str]:
        if len(value) != 2:
            raise ValueError(f"MWAA needs exactly 2 subnets (in two Availability Zones); got {len(value)}")
        if len(set(value)) != 2:
            raise ValueError("the 2 subnets must be different")
        return value

    @field_validator("security_group_ids")
    @classmethod
    def _sg_count(cls, value: list[str]) -> list[str]:
        if not 1 <= len(value) <= 5:
            raise ValueError(f"MWAA takes 1 to 5 security groups; got {len(value)}")
        return value


class Source(_Model):
    bucket_arn: str = Field(
        description="ARN of the versioned S3 bucket holding DAGs, e.g. arn:aws:s3:::my-bucket"
    )
    dag_s3_path: str = "dags"
    """DAG folder, relative to the bucket."""
    requirements_s3_path: str | None = None
    """requirements.txt, relative to the bucket (optional)."""
    plugins_s3_path: str | None = None
    """plugins.zip, relative to the bucket (optional)."""
    startup_script_s3_path: str | None = None
    """Startup script, relative to the bucket (optional)."""

    @field_validator("bucket_arn")
    @classmethod
    def _arn(cls, value: str) -> str:
        if not BUCKET_ARN_RE.match(value):
            raise ValueError("must be an S3 bucket ARN like arn:aws:s3:::my-airflow-bucket")
        return value

    @field_validator("dag_s3_path", "requirements_s3_path", "plugins_s3_path", "startup_script_s3_path")
    @classmethod
    def _relative(cls, value: str | None) -> str | None:
        if value is not None and (value.startswith(("/", "s3://")) or not value):
            raise ValueError(
                "must be a path relative to the bucket, e.g. dags or requirements/requirements.txt"
            )
        return value

    @property
    def bucket_name(self) -> str:
        return self.bucket_arn.rsplit(":", 1)[-1]


class LogModule(_Model):
    enabled: bool = True
    """Send this module's logs to CloudWatch."""
    log_level: str = "INFO"
    """CRITICAL, ERROR, WARNING, INFO or DEBUG."""

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value not in LOG_LEVELS:
            raise ValueError(f"unknown log level {value!r}; allowed: {', '.join(LOG_LEVELS)}")
        return value


class Logging(_Model):
    dag_processing: LogModule = LogModule(log_level="INFO")
    """DAG processing logs."""
    scheduler: LogModule = LogModule(log_level="INFO")
    """Scheduler logs."""
    task: LogModule = LogModule(log_level="INFO")
    """Task logs."""
    webserver: LogModule = LogModule(log_level="WARNING")
    """Web server logs."""
    worker: LogModule = LogModule(log_level="WARNING")
    """Worker logs."""


def _bucket_name(value: str) -> str:
    if not BUCKET_NAME_RE.match(value):
        raise ValueError(
            "must be an S3 bucket name (3-63 lowercase letters, digits, dots, hyphens), not an ARN"
        )
    return value


class DisasterRecovery(_Model):
    backup_bucket: str = Field(
        description="S3 bucket for mwaa-dr backups: private and encrypted (holds secrets)."
    )
    retention_days: int = Field(30, ge=1, le=3650)
    """How long `cleanup --backups` keeps backups."""
    path_prefix: str = "mwaa-dr"
    """Key prefix for backups (objects under `<path_prefix>/<name>/`; the execution roles may use
    that prefix)."""
    require_kms: bool = Field(
        False, description="Require SSE-KMS (or DSSE-KMS) default encryption on the backup bucket."
    )
    kms_key_arn: str | None = Field(
        None,
        description="The backup bucket's KMS key: the execution roles the modules and the api engine "
        "create may use it through S3.",
        pattern=r"^arn:aws(-[a-z]+)?:kms:",
    )

    _bucket = field_validator("backup_bucket")(lambda value: _bucket_name(value))


class StateLocation(_Model):
    """Where journals and the lock live when more than one machine runs workflows."""

    s3_bucket: str = Field(
        description="S3 bucket for journals and the lock (objects under <s3_prefix>/<name>/)."
    )
    s3_prefix: str = "mwaa-iac/state"
    """Key prefix; objects go under `<prefix>/<name>/`."""

    _bucket = field_validator("s3_bucket")(lambda value: _bucket_name(value))


class Routing(_Model):
    ssm_parameter_name: str = Field(description="SSM parameter that names the active environment.")
    route53_zone_id: str | None = None
    """Optional Route 53 zone of a CNAME to the active web server's host name (set both or neither).
    DNS only: MWAA's TLS certificate and web login work only under the environment's own host name."""
    route53_record_name: str | None = None
    """The CNAME's record name (with `route53_zone_id`)."""

    @field_validator("ssm_parameter_name")
    @classmethod
    def _ssm(cls, value: str) -> str:
        if not SSM_NAME_RE.match(value):
            raise ValueError(
                "must be an SSM parameter name such as /mwaa/analytics/active "
                "(a name with '/' must start with '/')"
            )
        return value

    @model_validator(mode="after")
    def _route53_pair(self) -> Routing:
        if (self.route53_zone_id is None) != (self.route53_record_name is None):
            raise ValueError("route53_zone_id and route53_record_name must be given together (or neither)")
        return self


class Deployment(_Model):
    """What is deployed now. Maintained by mwaa-iac (cutover/upgrade write it); edit it by hand only
    to adopt an environment that already exists."""

    active_color: Color = Color.BLUE
    """Maintained by mwaa-iac: the active colour."""
    blue: str | None = None
    """The version blue runs (null: not deployed). Edit by hand only to adopt an existing environment."""
    green: str | None = None
    """The version green runs (null: not deployed). Edit by hand only to adopt an existing environment."""

    @field_validator("blue", "green")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        return None if value is None else _check_version(value)

    def version_of(self, color: Color) -> str | None:
        return self.blue if color is Color.BLUE else self.green


class EnvironmentConfig(_Model):
    """One deployment: a pair of MWAA environments ``<name>-blue`` / ``<name>-green``."""

    name: str = Field(description="Base name; environments become <name>-blue and <name>-green.")
    region: str
    """AWS region, e.g. `us-east-1`."""
    airflow_version: str = Field(
        description="Desired Airflow version: the knob a GitOps pull request changes."
    )
    strategy: Strategy = Strategy.AUTO
    """`auto`, `in-place` or `cutover`. `auto` picks a cutover when mwaa-dr can carry history (short
    freeze), in place otherwise."""
    environment_class: str = "mw1.small"
    """`mw1.micro`, `mw1.small`, `mw1.medium`, `mw1.large`, `mw1.xlarge`, `mw1.2xlarge`."""
    schedulers: int = 2
    """2-5 (exactly 1 for `mw1.micro`)."""
    min_workers: int = Field(1, ge=1, le=25)
    """1-25, at most `max_workers` (1 for `mw1.micro`)."""
    max_workers: int = Field(10, ge=1, le=25)
    """1-25 (1 for `mw1.micro`)."""
    min_webservers: int = Field(2, ge=1, le=5)
    """1-5, at most `max_webservers` (1 for `mw1.micro`)."""
    max_webservers: int = Field(2, ge=1, le=5)
    """1-5 (1 for `mw1.micro`)."""
    network: Network
    """The environments' VPC networking."""
    source: Source
    """Where the DAGs, requirements, plugins and startup script are."""
    execution_role_arn: str | None = None
    """Use this role; without it the module creates a least-privilege role per environment."""
    kms_key: str | None = None
    """Customer managed key (create-only)."""
    webserver_access_mode: str = "PRIVATE_ONLY"
    """`PRIVATE_ONLY` or `PUBLIC_ONLY`."""
    endpoint_management: str = "SERVICE"
    """`SERVICE` or `CUSTOMER` (create-only)."""
    weekly_maintenance_window_start: str | None = None
    """e.g. `SUN:03:00` (minutes `00` or `30`)."""
    worker_replacement_strategy: str = "GRACEFUL"
    """`GRACEFUL` (running tasks may finish, up to 12 h) or `FORCED`."""
    airflow_configuration_options: dict[str, str] = Field(default_factory=dict)
    """`section.key: "value"` pairs, e.g. `core.default_timezone: utc`."""
    logging: Logging = Logging()
    """CloudWatch logging per Airflow module."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Tags for every resource (`mwaa-iac:deployment: <name>` is added)."""
    dr: DisasterRecovery
    """mwaa-dr backups."""
    routing: Routing
    """The routing that names the active environment."""
    state: StateLocation | None = Field(
        None,
        description="Journals and the lock in S3 (conditional writes); "
        "unset: local files under .mwaa-iac/<env>/.",
    )
    soak_hours: int = Field(24, ge=0, le=24 * 90)
    """How long both colours run after a cutover before cleanup."""
    deployment: Deployment = Deployment()
    """What is deployed now (maintained by mwaa-iac)."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError(
                "must start with a letter and contain only letters, digits, '-' and '_' (MWAA's name pattern)"
            )
        if len(value) > NAME_MAX:
            raise ValueError(
                f"is {len(value)} characters; at most {NAME_MAX} so that '<name>-green' fits "
                "MWAA's 80-character limit"
            )
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not REGION_RE.match(value):
            raise ValueError("must be an AWS region such as us-east-1")
        return value

    @field_validator("airflow_version")
    @classmethod
    def _airflow_version(cls, value: str) -> str:
        return _check_version(value)

    @field_validator("environment_class")
    @classmethod
    def _class(cls, value: str) -> str:
        if value not in ENVIRONMENT_CLASSES:
            raise ValueError(
                f"unknown environment class {value!r}; allowed: {', '.join(ENVIRONMENT_CLASSES)}"
            )
        return value

    @field_validator("webserver_access_mode")
    @classmethod
    def _access(cls, value: str) -> str:
        allowed = ("PRIVATE_ONLY", "PUBLIC_ONLY")
        if value not in allowed:
            raise ValueError(f"allowed: {', '.join(allowed)}")
        return value

    @field_validator("endpoint_management")
    @classmethod
    def _endpoints(cls, value: str) -> str:
        if value not in ("SERVICE", "CUSTOMER"):
            raise ValueError("allowed: SERVICE, CUSTOMER")
        return value

    @field_validator("worker_replacement_strategy")
    @classmethod
    def _wrs(cls, value: str) -> str:
        if value not in ("GRACEFUL", "FORCED"):
            raise ValueError("allowed: GRACEFUL (running tasks may finish, up to 12 h), FORCED")
        return value

    @field_validator("weekly_maintenance_window_start")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        if value is not None and not WINDOW_RE.match(value):
            raise ValueError("must look like SUN:03:00 (day MON..SUN, hour 00-23, minutes 00 or 30)")
        return value

    @field_validator("execution_role_arn")
    @classmethod
    def _role(cls, value: str | None) -> str | None:
        if value is not None and not ROLE_ARN_RE.match(value):
            raise ValueError("must be an IAM role ARN like arn:aws:iam::123456789012:role/mwaa-execution")
        return value

    @field_validator("airflow_configuration_options")
    @classmethod
    def _options(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not CONFIG_KEY_RE.match(key) or "." not in key or len(key) > 64:
                raise ValueError(
                    f"option {key!r} must be 'section.key' in lowercase, e.g. core.default_timezone"
                )
        return value

    @model_validator(mode="after")
    def _counts(self) -> EnvironmentConfig:
        limit = 1 if self.environment_class == "mw1.micro" else 5
        low = 1 if self.environment_class == "mw1.micro" else 2
        if not low <= self.schedulers <= limit:
            raise ValueError(f"schedulers must be {low}-{limit} for {self.environment_class}")
        if self.min_workers > self.max_workers:
            raise ValueError("min_workers must not exceed max_workers")
        if self.min_webservers > self.max_webservers:
            raise ValueError("min_webservers must not exceed max_webservers")
        if self.environment_class == "mw1.micro" and (self.max_webservers > 1 or self.max_workers > 1):
            raise ValueError(
                "mw1.micro runs 1 web server and 1 worker: set max_webservers and max_workers to 1"
            )
        active = self.deployment.active_color
        if (
            self.deployment.version_of(active) is None
            and self.deployment.version_of(active.other) is not None
        ):
            raise ValueError(f"deployment.active_color is {active} but only {active.other} has a version")
        return self

    # -- derived values -------------------------------------------------------------------------
    def environment_name(self, color: Color) -> str:
        return f"{self.name}-{color}"

    @property
    def active_color(self) -> Color:
        return self.deployment.active_color

    @property
    def active_version(self) -> str:
        """The version the active slot runs now (the desired version when nothing is recorded yet)."""
        return self.deployment.version_of(self.active_color) or self.airflow_version


def _format_loc(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def _problems_from(exc: ValidationError, file: str) -> list[ConfigProblem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(x for x in err.get("loc", ()) if not str(x).startswith("function-"))
        key = _format_loc(loc)
        kind = err.get("type", "")
        msg = str(err.get("msg", "invalid value"))
        msg = msg.removeprefix("Value error, ")
        if kind == "extra_forbidden":
            parent = _format_loc(loc[:-1])
            fields = _allowed_keys(loc[:-1])
            msg = "unknown key" + (f" under {parent}" if parent else "")
            if fields:
                msg += f"; allowed keys: {', '.join(fields)}"
        elif kind == "missing":
            msg = "required key is missing"
        elif kind == "enum":
            expected = err.get("ctx", {}).get("expected")
            msg = f"invalid value {err.get('input')!r}; allowed: {expected}"
        problems.append(ConfigProblem(file=file, key=key, message=msg))
    return problems


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] | None = EnvironmentConfig
    for item in loc:
        if model is None or isinstance(item, int):
            continue
        field = model.model_fields.get(str(item))
        if field is None:
            return []
        annotation = field.annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return sorted(model.model_fields) if model else []


def parse_config(data: object, file: str = "<config>") -> EnvironmentConfig:
    """Validate already-parsed data. Raises ConfigError only."""
    if not isinstance(data, dict):
        kind = "empty" if data is None else type(data).__name__
        raise ConfigError(
            [ConfigProblem(file, "", f"expected a mapping of settings at the top level, got {kind}")]
        )
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        raise ConfigError([ConfigProblem(file, str(k), "keys must be strings") for k in bad_keys])
    try:
        return EnvironmentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_problems_from(exc, file)) from None
    except (TypeError, ValueError, RecursionError) as exc:  # defensive: odd inputs pydantic rejects oddly
        raise ConfigError([ConfigProblem(file, "", f"invalid configuration: {exc}")]) from None


def parse_config_text(text: str, file: str = "<config>") -> EnvironmentConfig:
    """Parse YAML text and validate it. Raises ConfigError only."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([ConfigProblem(file, where, f"not valid YAML: {problem}")]) from None
    except (ValueError, RecursionError) as exc:
        raise ConfigError([ConfigProblem(file, "", f"not valid YAML: {exc}")]) from None
    return parse_config(data, file)


def config_path(env: str, root: Path) -> Path:
    """``environments/<env>/mwaa.yaml`` under ``root``."""
    return root / "environments" / env / CONFIG_FILENAME
