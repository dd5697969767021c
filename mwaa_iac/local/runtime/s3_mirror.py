"""What an environment takes from its S3 bucket: the DAG folder (mirrored), plugins.zip (unpacked)
and single objects (requirements.txt, the startup script), through one S3 client per runtime.

A DAG folder copy is a mirror of ``s3://<bucket>/<prefix>/``: new and changed objects are downloaded
(each to a temporary name, then renamed into place), objects deleted from S3 are deleted here, and
files the mirror did not write (such as mwaa-dr's local backups, written by tasks) are left alone. A
manifest beside the copy remembers what was downloaded (ETag and size per key), so an unchanged object
is not fetched again.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import zipfile
from pathlib import Path
from typing import Any

from mwaa_iac.local.runtime.base import EnvSpec


class UnsafeArchive(ValueError):
    """A plugins.zip member that would land outside the plugins folder."""


class S3Mirror:
    """Reads an environment's objects from S3. ``aws_env`` holds the endpoint, credentials and region
    of the local AWS endpoints (the variables Airflow's processes get too)."""

    def __init__(self, aws_env: dict[str, str]) -> None:
        self.aws_env = dict(aws_env)
        self._lock = threading.Lock()
        self._client: Any = None

    def client(self) -> Any:
        """The S3 client (path-style addressing: the local endpoint is an IP address)."""
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                env = self.aws_env
                session = boto3.session.Session(
                    aws_access_key_id=env.get("AWS_ACCESS_KEY_ID", "testing"),
                    aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY", "testing"),
                    aws_session_token=env.get("AWS_SESSION_TOKEN"),
                    region_name=env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or "us-east-1",
                )
                self._client = session.client(
                    "s3",
                    endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL"),
                    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
                )
            return self._client

    def read_object(self, bucket: str, key: str, version: str | None) -> bytes:
        """An object's bytes, of ``version`` when given (the one the environment runs)."""
        extra = {"VersionId": version} if version else {}
        return self.client().get_object(Bucket=bucket, Key=key, **extra)["Body"].read()

    def mirror_folder(self, bucket: str, s3_path: str, dest: Path, manifest_path: Path) -> None:
        """Make ``dest`` mirror ``s3://bucket/s3_path/`` (see the module docstring)."""
        dest.mkdir(parents=True, exist_ok=True)
        try:
            manifest: dict[str, str] = json.loads(manifest_path.read_text())
        except (OSError, ValueError):
            manifest = {}
        prefix = s3_path.strip("/")
        prefix = f"{prefix}/" if prefix else ""
        client = self.client()
        listing = self._listing(bucket, prefix)
        for rel, tag in listing.items():
            target = dest / rel
            if manifest.get(rel) == tag and target.is_file():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.parent / f".{target.name}.sync-tmp"
            client.download_file(bucket, prefix + rel, str(tmp))
            os.replace(tmp, target)
        for rel in set(manifest) - set(listing):
            path = dest / rel
            path.unlink(missing_ok=True)
            parent = path.parent
            while parent != dest and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
        if listing != manifest:
            tmp_manifest = manifest_path.with_suffix(".tmp")
            tmp_manifest.write_text(json.dumps(listing, sort_keys=True))
            os.replace(tmp_manifest, manifest_path)

    def _listing(self, bucket: str, prefix: str) -> dict[str, str]:
        """``{path below prefix: ETag + size}`` of the objects under ``prefix`` (unsafe keys skipped)."""
        listing: dict[str, str] = {}
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(prefix) :]
                if not rel or rel.endswith("/") or ".." in Path(rel).parts or rel.startswith("/"):
                    continue
                listing[rel] = obj.get("ETag", "") + str(obj.get("Size", ""))
        return listing

    def install_plugins(self, spec: EnvSpec, home: Path) -> None:
        """Unpack the environment's plugins.zip (at its object version) into ``home/plugins``, unless
        the same object is there already. :class:`UnsafeArchive` for a member outside the folder."""
        if not spec.plugins_s3_path:
            return
        marker = home / ".plugins-etag"
        key = spec.plugins_s3_path.lstrip("/")
        version = spec.plugins_s3_object_version
        extra = {"VersionId": version} if version else {}
        head = self.client().head_object(Bucket=spec.source_bucket, Key=key, **extra)
        tag = f"{spec.plugins_s3_path}:{version or ''}:{head.get('ETag', '')}"
        if marker.is_file() and marker.read_text() == tag:
            return
        archive = home / ".plugins.zip"
        archive.write_bytes(self.read_object(spec.source_bucket, key, version))
        plugins = home / "plugins"
        shutil.rmtree(plugins, ignore_errors=True)
        plugins.mkdir(parents=True)
        with zipfile.ZipFile(archive) as zf:
            base = plugins.resolve()
            for member in zf.namelist():
                if not (plugins / member).resolve().is_relative_to(base):
                    raise UnsafeArchive(f"unsafe path {member!r} in {spec.plugins_s3_path}")
            zf.extractall(plugins)
        marker.write_text(tag)
