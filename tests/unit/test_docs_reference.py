"""The documentation site's reference pages are generated from the code (docs/gen_ref.py, a mkdocs
hook): every command and every flag `--help` shows is in the CLI page, a changed help text changes
the page, every mwaa.yaml key of the config model's JSON schema and every event kind is listed, and
the site builds with `mkdocs build --strict` (broken links and anchors fail it)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from mwaa_iac.cli import app
from mwaa_iac.core.config import EnvironmentConfig
from mwaa_iac.events import EventKind

ROOT = Path(__file__).resolve().parents[2]


def _load_gen_ref():
    spec = importlib.util.spec_from_file_location("gen_ref", ROOT / "docs" / "gen_ref.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen_ref = _load_gen_ref()
FLAG = re.compile(r"(?<![\w-])(--?[a-zA-Z][\w-]*)")


def _command_paths() -> list[list[str]]:
    root = typer.main.get_command(app)
    ctx = root.context_class(root, info_name="mwaa-iac")
    return [c.command_path.split()[1:] for _, c in gen_ref.walk(root, ctx)]


def _section(page: str, path: list[str]) -> str:
    heading = f"## `{' '.join(['mwaa-iac', *path])}`\n"
    assert heading in page, f"no section for {heading.strip()}"
    start = page.index(heading)
    end = page.find("\n## ", start + 1)
    return page[start : end if end != -1 else None]


def test_every_command_and_every_flag_of_its_help_is_in_the_cli_page() -> None:
    page = gen_ref.cli_markdown()
    runner = CliRunner()
    paths = _command_paths()
    assert ["status"] in paths and ["local", "demo"] in paths and ["cutover"] in paths
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], prog_name="mwaa-iac", terminal_width=200)
        assert result.exit_code == 0, (path, result.output)
        options = result.output.split("Options:", 1)[-1].split("Commands:", 1)[0]
        flags = set(FLAG.findall(options))
        assert flags, path
        section = _section(page, path)
        missing = sorted(f for f in flags if f not in section)
        assert not missing, f"mwaa-iac {' '.join(path)}: {missing} not in the generated page"


def test_each_option_row_carries_the_help_text_of_the_code() -> None:
    section = _section(gen_ref.cli_markdown(), ["cutover"])
    assert "| `--force-drain` | At the drain timeout, continue although task instances" in section
    assert "[env var: MWAA_IAC_POLL_INTERVAL; default: 15.0]" in section


def test_changing_a_commands_help_changes_the_page() -> None:
    demo = typer.Typer()

    @demo.command()
    def hello(loud: bool = typer.Option(False, "--loud", help="Say it loudly.")) -> None:
        """Say hello."""

    @demo.command()
    def bye() -> None:
        """Say goodbye."""

    before = gen_ref.cli_markdown(demo)
    assert "| `--loud` | Say it loudly. |" in before and "Say hello." in before

    command = typer.main.get_command(demo)
    ctx = command.context_class(command, info_name="mwaa-iac")
    hello_command = command.get_command(ctx, "hello")
    hello_command.help = "Say hello, changed."
    next(p for p in hello_command.params if p.name == "loud").help = "Say it louder."
    after = gen_ref.cli_markdown(command)
    assert "Say hello, changed." in after and "| `--loud` | Say it louder. |" in after
    assert "Say it loudly." not in after


def test_every_mwaa_yaml_key_is_in_the_config_page_with_its_description() -> None:
    page = gen_ref.config_markdown()
    schema = EnvironmentConfig.model_json_schema()
    keys = [row[0] for row in gen_ref.config_rows(schema)]
    for top in schema["properties"]:
        assert top in keys
    for key in (
        "network.subnet_ids",
        "dr.backup_bucket",
        "routing.route53_zone_id",
        "deployment.active_color",
    ):
        assert f"| `{key}` |" in page
    assert all(row[4] for row in gen_ref.config_rows(schema)), "a key without a description"
    assert "AWS region, e.g. `us-east-1`." in page


def test_every_event_kind_is_in_the_events_page() -> None:
    page = gen_ref.events_markdown()
    assert all(f"| `{kind}` |" in page for kind in EventKind)


def test_every_relative_link_of_the_readme_points_at_a_file() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    outside_code = re.sub(r"```.*?```", "", readme, flags=re.S)
    targets = {t.split("#")[0] for t in re.findall(r"\]\(([^)#][^)]*)\)", outside_code)}
    missing = sorted(t for t in targets if not t.startswith("http") and not (ROOT / t).exists())
    assert not missing, missing


def test_the_readme_is_a_landing_page() -> None:
    lines = (ROOT / "README.md").read_text("utf-8").splitlines()
    assert len(lines) <= 220
    text = "\n".join(lines)
    for command in ("make demo", "make test", "mwaa-iac status --env demo", "mwaa-iac rollback", "cleanup"):
        assert command in text


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="mkdocs is not installed")
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or "mkdocs"
    result = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    cli = (tmp_path / "site" / "reference" / "cli" / "index.html").read_text("utf-8")
    assert 'id="mwaa-iac-status"' in cli
    exit_codes = (tmp_path / "site" / "reference" / "exit-codes" / "index.html").read_text("utf-8")
    assert "<td>143</td>" in exit_codes
