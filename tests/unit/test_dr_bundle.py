"""mwaa-dr delivered in the DAG folder: the bundle taken from mwaa-iac's own installation, its
``.airflowignore``, and uploads of changed objects only."""

from __future__ import annotations

import re
import subprocess
import sys

import boto3
import pytest
from moto import mock_aws

from mwaa_iac.adapters.dr_bundle import Bundle, load_bundle, remove_dr_folder, sync_bundle
from mwaa_iac.adapters.storage import S3
from mwaa_iac.core import dr
from mwaa_iac.workflows.dr_runs import deploy_dr_files, remove_dr_files


def test_bundle_holds_mwaa_dr_and_smart_open_py_files_only() -> None:
    bundle = load_bundle()
    paths = bundle.paths
    assert "mwaa_iac_dr/vendor/mwaa_dr/v_2_9/dr_factory.py" in paths
    assert "mwaa_iac_dr/vendor/mwaa_dr/framework/model/base_table.py" in paths
    assert "mwaa_iac_dr/vendor/smart_open/__init__.py" in paths
    assert "mwaa_iac_dr/vendor/smart_open/s3.py" in paths
    assert dr.AIRFLOWIGNORE in paths
    assert not [p for p in paths if "__pycache__" in p or "/tests/" in p]
    assert all(p.endswith(".py") for p in paths if p != dr.AIRFLOWIGNORE)
    assert len(paths) == len(set(paths))
    assert bundle.versions["mwaa-dr"] == "2.2.0" and bundle.versions["smart-open"]


def test_bundle_is_found_without_importing_mwaa_dr() -> None:
    """mwaa_dr imports Airflow: locating its files must not import it."""
    code = (
        "import sys; from mwaa_iac.adapters.dr_bundle import load_bundle; load_bundle(); "
        "print(sorted(m for m in ('mwaa_dr', 'smart_open', 'airflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _rules() -> list[str]:
    lines = [re.sub(r"\s*#.*", "", line) for line in dr.AIRFLOWIGNORE_TEXT.splitlines()]
    return [line for line in lines if line]


@pytest.mark.parametrize("base", ["", "mwaa_iac_dr/"])  # DAG folder root, or the DR folder itself
def test_airflowignore_hides_the_vendor_folder_in_airflows_regexp_syntax(base: str) -> None:
    """Airflow 2 (core.dag_ignore_file_syntax=regexp, the default) searches each rule in the path
    relative to the DAG folder it walks (verified against 2.9.2 and 2.10.3 in tests/local)."""
    hidden = [f"{base}vendor", f"{base}vendor/mwaa_dr/backup_metadata.py"]
    visible = [f"{base}backup_metadata.py", f"{base}mwaa_iac_probe.py", f"{base}restore_metadata.py"]
    for path in hidden:
        assert any(re.search(rule, path) for rule in _rules()), path
    for path in visible:
        assert not any(re.search(rule, path) for rule in _rules()), path


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="dags-bucket")
        yield S3(client=client)


def _keys(s3: S3, prefix: str = "dags/") -> set[str]:
    return {o["Key"] for o in s3.list_keys("dags-bucket", prefix)}


def test_sync_uploads_changed_objects_only_and_drops_stale_ones(s3: S3) -> None:
    bundle = load_bundle()
    first = sync_bundle(s3, "dags-bucket", "dags/", bundle)
    assert first["uploaded"] == len(bundle.files) and first["unchanged"] == 0
    assert {f"dags/{p}" for p in bundle.paths} <= _keys(s3)
    again = sync_bundle(s3, "dags-bucket", "dags", bundle)
    assert again["uploaded"] == 0 and again["unchanged"] == len(bundle.files)
    changed = dict(bundle.files)
    changed["mwaa_iac_dr/vendor/smart_open/__init__.py"] += b"\n# changed\n"
    del changed["mwaa_iac_dr/vendor/smart_open/s3.py"]
    result = sync_bundle(s3, "dags-bucket", "dags", Bundle(tuple(changed.items()), bundle.versions))
    assert (result["uploaded"], result["removed"]) == (1, 1)
    assert "dags/mwaa_iac_dr/vendor/smart_open/s3.py" not in _keys(s3)
    body = s3.get_text("dags-bucket", "dags/mwaa_iac_dr/vendor/smart_open/__init__.py")
    assert body is not None and body.endswith("# changed\n")


def test_sync_trusts_the_manifest_where_etags_are_not_md5(s3: S3) -> None:
    """SSE-KMS objects' ETags are not their MD5: the manifest's SHA-256 and ETag decide."""
    bundle = Bundle(((dr.AIRFLOWIGNORE, dr.AIRFLOWIGNORE_TEXT.encode()),), {"mwaa-dr": "2.2.0"})
    sync_bundle(s3, "dags-bucket", "dags", bundle)
    original = s3.list_keys
    s3.list_keys = lambda bucket, prefix: [  # type: ignore[method-assign]
        {**o, "ETag": '"kms-etag"'} for o in original(bucket, prefix)
    ]
    manifest = s3.get_text("dags-bucket", "dags/mwaa_iac_dr/vendor/.mwaa-iac-manifest.json") or ""
    s3.put_text(
        "dags-bucket",
        "dags/mwaa_iac_dr/vendor/.mwaa-iac-manifest.json",
        re.sub(r'"etag": "[0-9a-f]+"', '"etag": "kms-etag"', manifest),
    )
    assert sync_bundle(s3, "dags-bucket", "dags", bundle)["uploaded"] == 0


def test_deploy_brings_the_vendor_and_removal_empties_the_dr_folder(s3: S3) -> None:
    s3.put_text("dags-bucket", "dags/user_dag.py", "# the user's")
    probe = dr.render_probe_dag("DRFactory_2_9", "a")
    vendor = deploy_dr_files(s3, "dags-bucket", "dags", [probe])
    assert vendor["versions"]["mwaa-dr"] == "2.2.0"
    assert "dags/mwaa_iac_dr/mwaa_iac_probe.py" in _keys(s3)
    removed = remove_dr_files(s3, "dags-bucket", "dags")
    assert "dags/mwaa_iac_dr/vendor/mwaa_dr/v_2_9/dr_factory.py" in removed
    assert "dags/mwaa_iac_dr/.airflowignore" in removed
    assert _keys(s3) == {"dags/user_dag.py"}
    assert remove_dr_folder(s3, "dags-bucket", "dags") == []
