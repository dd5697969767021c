"""The journal and the lock, on both stores: local files and S3 (moto's server on loopback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import boto3
import pytest
from botocore.stub import Stubber

from mwaa_iac.adapters.storage import S3
from mwaa_iac.core.config import parse_config_text
from mwaa_iac.errors import LockHeldError, UsageError
from mwaa_iac.workflows.journal import Journal, JournalError, Lock, holding_lock, open_journal
from mwaa_iac.workflows.state import LocalStore, S3Store, StateError, open_state
from mwaa_iac.workspace import Workspace

BUCKET = "state-bucket"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    _client(endpoint).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def _client(endpoint: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(params=["local", "s3"])
def new_store(request, tmp_path):
    """A factory: each call is a separate store object (as a separate process would have) over the
    same location."""
    if request.param == "local":
        return lambda: LocalStore(tmp_path)
    endpoint = request.getfixturevalue("s3_endpoint")
    prefix = f"t/{request.node.name}"
    return lambda: S3Store(S3(client=_client(endpoint)), BUCKET, prefix)


def test_journal_records_steps_and_reloads(new_store) -> None:
    journal = Journal.start(new_store(), "j.jsonl", "upgrade", {"to": "2.10.3"})
    journal.started("preflight")
    journal.done("preflight", version="2.9.2")
    journal.started("hop-1")
    journal.note("hop-1", update_issued=True)
    loaded = Journal.load(new_store(), "j.jsonl")
    assert loaded is not None
    assert loaded.run_id == journal.run_id and loaded.params == {"to": "2.10.3"}
    assert loaded.state("preflight") == "done" and loaded.state("hop-1") == "started"
    assert loaded.data("hop-1") == {"update_issued": True} and loaded.state("hop-2") is None
    assert not loaded.finished
    assert loaded.attempts("hop-1") == 1  # the note is not an attempt
    journal.started("hop-1", retry=True)  # a start with data is one
    assert journal.attempts("hop-1") == 2 and journal.attempts("hop-2") == 0
    assert Journal.load(new_store(), "other.jsonl") is None


def test_unfinished_journal_blocks_a_new_run_until_resumed(new_store) -> None:
    first = Journal.start(new_store(), "upgrade.journal.jsonl", "upgrade", {"to": "2.10.3"})
    with pytest.raises(JournalError) as info:
        Journal.start(new_store(), "upgrade.journal.jsonl", "upgrade", {})
    assert "unfinished upgrade" in info.value.message and "--resume" in info.value.hint
    with pytest.raises(JournalError, match=r"was to 2\.10\.3, not 2\.11\.2"):
        open_journal(new_store(), "upgrade.journal.jsonl", "upgrade", {"to": "2.11.2"}, resume=True)
    resumed = open_journal(new_store(), "upgrade.journal.jsonl", "upgrade", {"to": "2.10.3"}, resume=True)
    assert resumed.run_id == first.run_id
    resumed.end("succeeded")
    with pytest.raises(JournalError, match="already finished"):
        open_journal(new_store(), "upgrade.journal.jsonl", "upgrade", {"to": "2.10.3"}, resume=True)
    second = Journal.start(new_store(), "upgrade.journal.jsonl", "upgrade", {})  # a finished one is archived
    assert not second.finished and second.run_id != first.run_id
    archived = Journal.load(new_store(), f"upgrade.journal.{first.run_id}.jsonl")
    assert archived is not None and archived.finished


def test_nothing_to_resume_says_where_it_looked(new_store) -> None:
    store = new_store()
    with pytest.raises(JournalError) as info:
        open_journal(store, "j.jsonl", "cutover", {"to": "2.10.3"}, resume=True)
    assert store.where("j.jsonl") in info.value.message


def test_torn_last_line_is_ignored(new_store) -> None:
    store = new_store()
    Journal.start(store, "j.jsonl", "upgrade", {}).done("preflight")
    store.append("j.jsonl", '{"event": "sta')
    loaded = Journal.load(new_store(), "j.jsonl")
    assert loaded is not None and loaded.state("preflight") == "done"


def test_lock_excludes_a_second_holder_and_releases(new_store) -> None:
    first = Lock(new_store())
    first.acquire("upgrade")
    with pytest.raises(LockHeldError) as info:
        Lock(new_store()).acquire("cutover")
    assert "another upgrade holds the lock" in info.value.message
    assert new_store().where("lock") in info.value.message
    first.release()
    Lock(new_store()).acquire("cutover")


def test_stale_lock_needs_break_lock(new_store) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    holder = {"pid": int(dead.stdout), "host": os.uname().nodename, "workflow": "upgrade", "token": "x"}
    assert new_store().create("lock", json.dumps(holder))
    with pytest.raises(LockHeldError) as info:
        Lock(new_store()).acquire("upgrade")
    assert "stale" in info.value.message and "--break-lock" in info.value.hint
    taker = Lock(new_store())
    taker.acquire("upgrade", break_lock=True)
    assert taker.holder()["pid"] == os.getpid()


def test_lock_from_another_host_is_not_called_stale(new_store) -> None:
    holder = {"pid": 1, "host": "ci-runner-7", "workflow": "cutover", "since": 0, "token": "x"}
    assert new_store().create("lock", json.dumps(holder))
    with pytest.raises(LockHeldError) as info:
        Lock(new_store()).acquire("upgrade")
    message = info.value.message
    assert message.startswith("another cutover") and "ci-runner-7" in message and "1970-01-01" in message
    assert "if you are sure it is gone" in info.value.hint


def test_release_leaves_a_lock_that_was_taken_over(new_store) -> None:
    first = Lock(new_store())
    first.acquire("upgrade")
    second = Lock(new_store())
    second.acquire("upgrade", break_lock=True)
    first.release()  # the first owner comes back: it must not remove the new owner's lock
    assert second.holder()["token"] == second.owner["token"]
    second.release()
    assert new_store().read("lock") is None


def test_a_lock_that_cannot_be_released_does_not_hide_the_workflows_error(tmp_path) -> None:
    class Unreachable(LocalStore):
        def read(self, name: str) -> str | None:
            if self.broken:
                raise StateError("cannot read the lock (network down)")
            return super().read(name)

    store = Unreachable(tmp_path)
    store.broken = False
    with pytest.raises(ValueError, match="the workflow's own error"), holding_lock(store, "upgrade"):
        store.broken = True
        raise ValueError("the workflow's own error")
    assert (tmp_path / "lock").exists()  # left behind: --break-lock takes it


def test_s3_journal_refuses_to_clobber_a_concurrent_writer(s3_endpoint) -> None:
    mine = S3Store(S3(client=_client(s3_endpoint)), BUCKET, "t/clobber")
    journal = Journal.start(mine, "j.jsonl", "cutover", {})
    journal.done("preflight")
    # Someone without the lock rewrites the journal behind this workflow's back.
    theirs = S3Store(S3(client=_client(s3_endpoint)), BUCKET, "t/clobber")
    theirs.append("j.jsonl", '{"event": "started", "step": "x"}\n')
    with pytest.raises(StateError, match="changed by another writer"):
        journal.done("backup")
    loaded = Journal.load(mine, "j.jsonl")
    assert loaded is not None and loaded.state("backup") is None and loaded.state("x") == "started"


def test_s3_lock_retries_a_conflict_then_reports_the_holder() -> None:
    """S3 answers 409 while another conditional write to the key is in flight: retried; then 412."""
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    stubber = Stubber(client)
    stubber.add_client_error("put_object", "ConditionalRequestConflict", http_status_code=409)
    stubber.add_client_error("put_object", "PreconditionFailed", http_status_code=412)
    stubber.add_response(
        "get_object",
        {"Body": _body(json.dumps({"workflow": "cutover", "host": "h", "pid": 9})), "ETag": '"e"'},
    )
    with stubber, pytest.raises(LockHeldError, match="another cutover holds the lock s3://b/p/lock"):
        Lock(S3Store(S3(client=client), "b", "p")).acquire("upgrade")
    stubber.assert_no_pending_responses()


def test_s3_lock_write_is_conditional() -> None:
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    stubber = Stubber(client)
    expected = {"Bucket": "b", "Key": "p/lock", "Body": _ANY_BODY, "IfNoneMatch": "*"}
    stubber.add_response("put_object", {"ETag": '"1"'}, expected)
    with stubber:
        lock = Lock(S3Store(S3(client=client), "b", "p"))
        lock.acquire("upgrade")
    assert lock.held


def test_open_state_follows_the_config(tmp_path, example_text) -> None:
    local = parse_config_text(example_text, "mwaa.yaml")
    ws = Workspace(tmp_path, "analytics")
    assert isinstance(open_state(ws, local), LocalStore)
    assert open_state(ws, local).where("lock") == str(tmp_path / ".mwaa-iac" / "analytics" / "lock")
    remote = parse_config_text(example_text + "state:\n  s3_bucket: team-mwaa-state\n", "mwaa.yaml")
    store = open_state(ws, remote, S3(client=object()))
    assert store.where("lock") == f"s3://team-mwaa-state/mwaa-iac/state/{remote.name}/lock"


def _body(text: str):
    from io import BytesIO

    from botocore.response import StreamingBody

    data = text.encode()
    return StreamingBody(BytesIO(data), len(data))


class _Any:
    def __eq__(self, other: object) -> bool:
        return True


_ANY_BODY = _Any()


def test_ci_requires_the_state_in_s3(tmp_path, example_text, monkeypatch) -> None:
    local = parse_config_text(example_text, "mwaa.yaml")
    ws = Workspace(tmp_path, "analytics")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(UsageError) as caught:
        open_state(ws, local)
    assert "state.s3_bucket is required on a CI runner" in caught.value.message
    assert "s3_bucket:" in (caught.value.hint or "") and "MWAA_IAC_ALLOW_LOCAL_STATE" in caught.value.hint
    assert caught.value.exit_code == 2
    remote = parse_config_text(example_text + "state:\n  s3_bucket: team-mwaa-state\n", "mwaa.yaml")
    assert isinstance(open_state(ws, remote, S3(client=object())), S3Store)
    monkeypatch.setenv("MWAA_IAC_ALLOW_LOCAL_STATE", "true")
    assert isinstance(open_state(ws, local), LocalStore)
    monkeypatch.setenv("CI", "false")
    monkeypatch.delenv("MWAA_IAC_ALLOW_LOCAL_STATE")
    assert isinstance(open_state(ws, local), LocalStore)
