"""examples/iam/operator-policy.json is valid IAM JSON and allows every AWS operation mwaa-iac calls.

The operations are found in the product's source (not the local stack, not the code that runs inside
Airflow with the execution role): boto3 client method calls, ``get_paginator("op")`` and the MWAA
adapter's ``_call("Operation", ...)``, each mapped through botocore's own service model to its
operation and then to the IAM action that authorises it.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import re
from pathlib import Path

import botocore.session
import pytest

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "examples" / "iam" / "operator-policy.json"
PRODUCT = REPO / "mwaa_iac"
NOT_OPERATOR_CODE = ("local", "dr_runtime", "templates", "data")  # emulator; runs inside Airflow
IAM_PREFIX = {"mwaa": "airflow", "s3control": "s3", "cloudwatch": "cloudwatch"}
# Operations authorised by an action of another name (Service Authorization Reference).
ACTION_OF = {
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3", "GetBucketEncryption"): "s3:GetEncryptionConfiguration",
    ("s3", "DeleteObjects"): "s3:DeleteObject",
    ("s3", "HeadObject"): "s3:GetObject",  # s3:GetObjectVersion too when a VersionId is given
    ("s3control", "GetPublicAccessBlock"): "s3:GetAccountPublicAccessBlock",
}
NO_PERMISSION_NEEDED = {"sts:GetCallerIdentity"}
# Modules that are handed a client instead of creating one: the services of those clients.
INJECTED = {
    "adapters/bucket_check.py": {"s3"},
    "adapters/airflow_api.py": {"mwaa"},
}
ACTION_RE = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9*]+$")
CONDITION_OPERATORS = {"StringEquals", "StringLike", "ArnLike", "ArnEquals", "Bool", "StringNotEquals"}


def _product_modules() -> list[Path]:
    return [
        p for p in sorted(PRODUCT.rglob("*.py")) if p.relative_to(PRODUCT).parts[0] not in NOT_OPERATOR_CODE
    ]


def _calls(tree: ast.AST) -> tuple[set[str], set[str], set[str], set[str], set[str]]:
    """(method names called, paginator operations, MWAA _call operations, services created, methods
    called on an attribute named ``client`` — a boto3 client handed over by another module)."""
    methods, paginators, mwaa_ops, services, on_client = set(), set(), set(), set(), set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        first = node.args[0] if node.args else None
        literal = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None
        if name in ("client", "_client") and literal:
            services.add(literal)
        elif name == "get_paginator" and literal:
            paginators.add(literal)
        elif name == "_call" and literal:
            mwaa_ops.add(literal)
        elif isinstance(func, ast.Attribute):
            methods.add(func.attr)
            if isinstance(func.value, ast.Attribute) and func.value.attr == "client":
                on_client.add(func.attr)
    return methods, paginators, mwaa_ops, services, on_client


def used_actions() -> dict[str, set[str]]:
    """IAM action -> modules that need it."""
    session = botocore.session.get_session()
    parsed = {p: _calls(ast.parse(p.read_text("utf-8"))) for p in _product_modules()}
    all_services = set().union(*(c[3] for c in parsed.values())) | set().union(*INJECTED.values())
    models = {s: session.get_service_model(s) for s in all_services}
    method_to_op = {s: {botocore.xform_name(op): op for op in m.operation_names} for s, m in models.items()}
    needed: dict[str, set[str]] = {}

    def need(service: str, operation: str, module: str) -> None:
        action = ACTION_OF.get((service, operation)) or f"{IAM_PREFIX.get(service, service)}:{operation}"
        needed.setdefault(action, set()).add(module)

    for path, (methods, paginators, mwaa_ops, services, on_client) in parsed.items():
        module = str(path.relative_to(PRODUCT))
        own = services | INJECTED.get(module, set())
        for op in mwaa_ops:
            assert op in models["mwaa"].operation_names, f"{module}: _call({op!r}) is no MWAA operation"
            need("mwaa", op, module)
        for service in own:
            for method in methods | paginators:
                if method in method_to_op[service]:
                    need(service, method_to_op[service][method], module)
        for method in on_client:
            owners = [s for s in all_services if method in method_to_op[s]]
            assert owners, f"{module}: .client.{method}() is no operation of {sorted(all_services)}"
            for service in owners:
                need(service, method_to_op[service][method], module)
    return needed


def _statements() -> list[dict]:
    return json.loads(POLICY.read_text("utf-8"))["Statement"]


def _as_list(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def test_the_policy_is_valid_iam_json() -> None:
    document = json.loads(POLICY.read_text("utf-8"))
    assert set(document) == {"Version", "Statement"}
    assert document["Version"] == "2012-10-17"
    sids = [s["Sid"] for s in document["Statement"]]
    assert len(sids) == len(set(sids)), "Sids must be unique"
    for statement in document["Statement"]:
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}, statement["Sid"]
        assert re.match(r"^[A-Za-z0-9]+$", statement["Sid"])
        assert statement["Effect"] in ("Allow", "Deny")
        for action in _as_list(statement["Action"]):
            assert ACTION_RE.match(action), action
        for resource in _as_list(statement["Resource"]):
            assert resource == "*" or resource.startswith("arn:aws:"), resource
        for operator, pairs in statement.get("Condition", {}).items():
            assert operator in CONDITION_OPERATORS, operator
            assert isinstance(pairs, dict) and pairs
    # IAM's limit for a managed policy: 6,144 characters without whitespace.
    assert len(re.sub(r"\s", "", POLICY.read_text("utf-8"))) <= 6144


def _allowed(action: str) -> bool:
    return any(
        statement["Effect"] == "Allow"
        and any(fnmatch.fnmatchcase(action, pattern) for pattern in _as_list(statement["Action"]))
        for statement in _statements()
    )


def test_every_operation_the_code_calls_is_allowed() -> None:
    needed = used_actions()
    # The scan must see the calls we know of, or it proves nothing.
    for known in ("airflow:GetEnvironment", "airflow:InvokeRestApi", "s3:PutObject", "ssm:PutParameter",
                  "cloudwatch:GetMetricStatistics", "s3:GetBucketPolicyStatus", "s3:ListBucket"):  # fmt: skip
        assert known in needed, f"the scan lost {known}"
    missing = {a: sorted(m) for a, m in needed.items() if a not in NO_PERMISSION_NEEDED and not _allowed(a)}
    assert not missing, f"actions the code needs that operator-policy.json does not allow: {missing}"


def test_no_wildcard_actions_and_no_unused_service() -> None:
    services = {a.split(":")[0] for a in used_actions()} | {"iam", "ec2", "kms"}
    for statement in _statements():
        for action in _as_list(statement["Action"]):
            assert "*" not in action, f"{statement['Sid']}: least privilege, no wildcard actions ({action})"
            assert action.split(":")[0] in services, f"{statement['Sid']}: {action} is never needed"


@pytest.mark.parametrize("sid", ["MwaaChange", "MwaaInvokeRestApi", "DrBucketBackups", "StateObjects"])
def test_mutating_statements_are_scoped(sid: str) -> None:
    statement = next(s for s in _statements() if s["Sid"] == sid)
    assert statement["Resource"] != "*"


def test_every_statement_is_explained_in_the_docs() -> None:
    guide = (REPO / "docs" / "guides" / "aws-account.md").read_text("utf-8")
    for statement in _statements():
        assert f"`{statement['Sid']}`" in guide, (
            f"docs/guides/aws-account.md does not explain {statement['Sid']}"
        )


def test_the_gitops_example_keeps_state_in_s3_and_can_resume_and_clean_up() -> None:
    import yaml

    workflow = yaml.safe_load((REPO / "examples/gitops/workflows/mwaa-iac.yml").read_text("utf-8"))
    recover = workflow["jobs"]["recover"]
    script = "\n".join(step.get("run", "") for step in recover["steps"])
    for command in ("cutover --env", "--resume", "rollback --env", "cleanup --env", "doctor --env"):
        assert command in script
    assert recover["concurrency"]["group"] == workflow["jobs"]["deploy"]["concurrency"]["group"]
    readme = (REPO / "examples/gitops/README.md").read_text("utf-8")
    assert "state:\n  s3_bucket:" in readme and "CI=true" in readme
