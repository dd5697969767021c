"""What-changed diffs of the pull-request report: settings and Terraform files."""

from __future__ import annotations

from mwaa_iac.report.diff import Change, diff_mappings, diff_terraform_files, flatten, normalize_hcl


def test_flatten_quotes_keys_with_dots() -> None:
    data = {"a": {"b": 1}, "airflow_configuration_options": {"core.load_examples": "False"}, "tags": {}}
    assert flatten(data) == {
        "a.b": 1,
        'airflow_configuration_options["core.load_examples"]': "False",
        "tags": {},
    }


def test_diff_kinds_are_sorted_by_key() -> None:
    before = {"airflow_version": "2.9.2", "tags": {"team": "a"}, "gone": 1}
    after = {"airflow_version": "2.10.3", "tags": {"team": "a", "cost": "1"}}
    assert diff_mappings(before, after) == [
        Change("airflow_version", "changed", "2.9.2", "2.10.3"),
        Change("gone", "removed", 1, None),
        Change("tags.cost", "added", None, "1"),
    ]


def test_hcl_blocks_merge_and_line_numbers_are_ignored() -> None:
    old_format = {
        "variable": [
            {"a": {"default": ["x"], "type": ["${string}"], "__start_line__": 1, "__end_line__": 3}},
            {"b": {"default": [1], "__start_line__": 5, "__end_line__": 6}},
        ]
    }
    assert normalize_hcl(old_format) == {
        "variable": {"a": {"default": "x", "type": "string"}, "b": {"default": 1}}
    }


def test_terraform_diff_lists_changed_variables_and_ignores_formatting() -> None:
    before = {
        "settings.auto.tfvars": 'retention = 14\nname = "a"\n',
        "main.tf": "locals {\n  x = 1\n}\n",
        "old.tf": "locals {}\n",
    }
    after = {
        "settings.auto.tfvars": 'retention = 30\nname   = "a"\n',
        "main.tf": "# a comment only\nlocals {\n  x = 1\n}\n",
        "new.tfvars": "extra = true\n",
    }
    changes = {c.file: c for c in diff_terraform_files(before, after)}
    assert set(changes) == {"settings.auto.tfvars", "old.tf", "new.tfvars"}
    assert changes["settings.auto.tfvars"].changes == (Change("retention", "changed", 14, 30),)
    assert changes["old.tf"].status == "removed" and changes["new.tfvars"].status == "added"


def test_unparsable_terraform_is_reported_not_raised() -> None:
    changes = diff_terraform_files({"x.tf": "a = 1\n"}, {"x.tf": "a = = =\n"})
    assert changes[0].error is not None and changes[0].error.startswith("could not be parsed")


def test_secret_looking_settings_are_masked_and_others_shown() -> None:
    from mwaa_iac.report.diff import MASKED, mask_sensitive

    before = {
        "airflow_configuration_options": {"core.default_timezone": "utc", "smtp.smtp_password": "old-pw"}
    }
    after = {
        "airflow_configuration_options": {
            "core.default_timezone": "europe/berlin",
            "smtp.smtp_password": "new-pw",
            "secrets.backend_kwargs": '{"token": "t"}',
        }
    }
    changes = {c.key: c for c in mask_sensitive(diff_mappings(before, after))}
    assert changes['airflow_configuration_options["core.default_timezone"]'].after == "europe/berlin"
    password = changes['airflow_configuration_options["smtp.smtp_password"]']
    assert (password.kind, password.before, password.after) == ("changed", MASKED, MASKED)
    added = changes['airflow_configuration_options["secrets.backend_kwargs"]']
    assert (added.kind, added.before, added.after) == ("added", None, MASKED)
    assert "pw" not in repr(list(changes.values())) and '"t"' not in repr(list(changes.values()))
