"""mwaa-dr delivered in the DAG folder: its files and smart_open's, taken from mwaa-iac's own
installation, and mwaa-iac's copy module (``mwaa_iac_copy.py``), uploaded under
``<DAG folder>/mwaa_iac_dr/vendor/`` beside the generated DR DAGs.

Why: on MWAA a package reaches the environment only through requirements.txt, and a changed
requirements.txt takes effect only through UpdateEnvironment — a restart of the live source
(docs/design.md §6). smart_open is mwaa-dr's only dependency and MWAA's image lacks it; smart_open needs
``wrapt``, which Airflow already brings. ``mwaa_iac_dr/.airflowignore`` hides ``vendor/`` from DAG
parsing (mwaa_dr ships DAG files of its own). Only ``.py`` files are taken (no ``__pycache__``, no
tests). mwaa_dr is located without importing it (importing it imports Airflow).

Re-deploys are cheap: an object is uploaded only when its content changed — its ETag is the MD5 of
a single-part upload, and where it is not (SSE-KMS buckets) a manifest beside the files records each
file's SHA-256 and the ETag S3 gave it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import botocore.exceptions

from mwaa_iac.adapters.aws import aws_error
from mwaa_iac.adapters.storage import S3
from mwaa_iac.core import dr
from mwaa_iac.errors import MwaaIacError

# (import name, distribution name)
PACKAGES = (("mwaa_dr", "mwaa-dr"), ("smart_open", "smart-open"))
MANIFEST = f"{dr.VENDOR_FOLDER}/.mwaa-iac-manifest.json"
# mwaa-iac's copy module: runs inside the environment, delivered beside mwaa-dr (not imported here).
COPY_MODULE_FILE = Path(__file__).resolve().parent.parent / "dr_runtime" / f"{dr.COPY_MODULE}.py"
_SKIP_DIRS = frozenset({"__pycache__", "tests", "test"})


class BundleError(MwaaIacError):
    """mwaa-dr or smart_open is missing from mwaa-iac's own installation."""


@dataclass(frozen=True)
class Bundle:
    """Files to upload, paths relative to the DAG folder (``mwaa_iac_dr/...``), and versions."""

    files: tuple[tuple[str, bytes], ...]
    versions: dict[str, str]  # distribution name -> version, e.g. {"mwaa-dr": "2.2.0", ...}

    @property
    def paths(self) -> list[str]:
        return [path for path, _ in self.files]

    def describe(self) -> str:
        return ", ".join(f"{name} {version}" for name, version in self.versions.items())


def package_files(import_name: str) -> list[tuple[str, bytes]]:
    """``(path, bytes)`` of a top-level package's ``.py`` files, ``path`` relative to the folder
    holding the package (``mwaa_dr/v_2_9/dr_factory.py``). The package is found, not imported."""
    spec = importlib.util.find_spec(import_name)
    if spec is None or not spec.submodule_search_locations:
        raise BundleError(
            f"{import_name} is not installed beside mwaa-iac: it is delivered to environments from here",
            hint="reinstall mwaa-iac with its dependencies (make setup, or pip install mwaa-iac)",
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    files = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root.parent)
        if any(part in _SKIP_DIRS for part in relative.parts[:-1]):
            continue
        files.append((relative.as_posix(), path.read_bytes()))
    return files


@lru_cache(maxsize=1)
def load_bundle() -> Bundle:
    """The vendor bundle: mwaa_dr's and smart_open's files plus ``mwaa_iac_dr/.airflowignore``."""
    files: list[tuple[str, bytes]] = [(dr.AIRFLOWIGNORE, dr.AIRFLOWIGNORE_TEXT.encode("utf-8"))]
    versions = {}
    for import_name, dist in PACKAGES:
        files += [(f"{dr.VENDOR_FOLDER}/{path}", data) for path, data in package_files(import_name)]
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = "unknown"
    copy_module = COPY_MODULE_FILE.read_bytes()
    files.append((f"{dr.VENDOR_FOLDER}/{dr.COPY_MODULE}.py", copy_module))
    versions[dr.COPY_MODULE] = hashlib.sha256(copy_module).hexdigest()[:12]
    return Bundle(tuple(files), versions)


def _etag(value: Any) -> str:
    return str(value or "").strip('"')


def sync_bundle(s3: S3, bucket: str, dag_path: str, bundle: Bundle | None = None) -> dict[str, Any]:
    """Upload the bundle under ``s3://bucket/<dag_path>/``: only objects whose content changed; vendor
    objects that are no longer part of the bundle are deleted. Returns counts and versions."""
    bundle = bundle or load_bundle()

    def key(relative: str) -> str:
        return dr.dag_key(dag_path, relative)

    listed = {o["Key"]: _etag(o.get("ETag")) for o in s3.list_keys(bucket, key(f"{dr.DR_DAG_FOLDER}/"))}
    try:
        manifest = json.loads(s3.get_text(bucket, key(MANIFEST)) or "{}")
    except ValueError:
        manifest = {}
    recorded: dict[str, dict[str, str]] = manifest.get("files", {}) if isinstance(manifest, dict) else {}
    files: dict[str, dict[str, str]] = {}
    uploaded = unchanged = 0
    for relative, data in bundle.files:
        sha = hashlib.sha256(data).hexdigest()
        current = listed.get(key(relative))
        known = recorded.get(relative, {})
        if current is not None and (
            current == hashlib.md5(data, usedforsecurity=False).hexdigest()
            or (known.get("sha256") == sha and known.get("etag") == current)
        ):
            files[relative] = {"sha256": sha, "etag": current}
            unchanged += 1
            continue
        files[relative] = {"sha256": sha, "etag": _put(s3, bucket, key(relative), data)}
        uploaded += 1
    stale = [
        k
        for k in listed
        if k.startswith(key(f"{dr.VENDOR_FOLDER}/")) and k != key(MANIFEST) and k[len(key("")) :] not in files
    ]
    for k in stale:
        s3.delete(bucket, k)
    new_manifest = {"versions": bundle.versions, "files": files}
    if new_manifest != manifest:
        s3.put_text(bucket, key(MANIFEST), json.dumps(new_manifest, indent=1, sort_keys=True))
    return {
        "vendor": f"s3://{bucket}/{key(dr.VENDOR_FOLDER)}/",
        "versions": bundle.versions,
        "uploaded": uploaded,
        "unchanged": unchanged,
        "removed": len(stale),
    }


def remove_dr_folder(s3: S3, bucket: str, dag_path: str) -> list[str]:
    """Delete every object under ``<dag_path>/mwaa_iac_dr/``: DR DAG files, vendor files, ignore file."""
    keys = [o["Key"] for o in s3.list_keys(bucket, dr.dag_key(dag_path, f"{dr.DR_DAG_FOLDER}/"))]
    for k in keys:
        s3.delete(bucket, k)
    return keys


def _put(s3: S3, bucket: str, key: str, data: bytes) -> str:
    try:
        return _etag(s3.client.put_object(Bucket=bucket, Key=key, Body=data).get("ETag"))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise aws_error(f"cannot write s3://{bucket}/{key}", exc) from exc
