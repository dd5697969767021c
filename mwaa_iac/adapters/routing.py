"""Routing: the published contract that says which colour is active.

MWAA has no custom-domain field, so the stable contract is an SSM parameter holding the active
environment's name (and web server URL, colour, Airflow version), plus an optional Route 53 CNAME to
the active web server (see docs/design.md §3, "Routing").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from mwaa_iac.adapters import aws
from mwaa_iac.adapters.aws import aws_error


@dataclass
class Routing:
    """The published contract: an SSM parameter with the active environment, optionally a CNAME."""

    region: str | None = None
    ssm: Any = None
    route53: Any = None

    def __post_init__(self) -> None:
        if self.ssm is None:
            self.ssm = aws.client("ssm", self.region)

    def read(self, parameter: str) -> dict[str, Any] | None:
        try:
            value = self.ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
                return None
            raise aws_error(f"cannot read SSM parameter {parameter}", exc) from exc
        try:
            return json.loads(value)
        except ValueError:
            return {"name": value}

    def read_record(self, zone_id: str, record_name: str) -> str | None:
        """The host a CNAME record points at (without the trailing dot), or None when it does not
        exist."""
        client = self.route53 or aws.client("route53")
        wanted = record_name.rstrip(".").lower()
        try:
            answer = client.list_resource_record_sets(
                HostedZoneId=zone_id, StartRecordName=wanted, StartRecordType="CNAME", MaxItems="1"
            )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise aws_error(f"cannot read Route 53 record {record_name}", exc) from exc
        for item in answer.get("ResourceRecordSets", []):
            if item.get("Name", "").rstrip(".").lower() == wanted and item.get("Type") == "CNAME":
                values = item.get("ResourceRecords") or [{}]
                return str(values[0].get("Value", "")).rstrip(".") or None
        return None

    def point(
        self,
        parameter: str,
        *,
        name: str,
        color: str,
        webserver_url: str | None,
        airflow_version: str,
        zone_id: str | None = None,
        record_name: str | None = None,
    ) -> None:
        value = json.dumps(
            {
                "name": name,
                "color": color,
                "webserver_url": webserver_url,
                "airflow_version": airflow_version,
            },
            sort_keys=True,
        )
        try:
            self.ssm.put_parameter(Name=parameter, Value=value, Type="String", Overwrite=True)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise aws_error(f"cannot write SSM parameter {parameter}", exc) from exc
        if zone_id and record_name and webserver_url:
            client = self.route53 or aws.client("route53")
            host = webserver_url.removeprefix("https://").removeprefix("http://").split("/")[0]
            try:
                client.change_resource_record_sets(
                    HostedZoneId=zone_id,
                    ChangeBatch={
                        "Comment": f"mwaa-iac: {name} is active",
                        "Changes": [
                            {
                                "Action": "UPSERT",
                                "ResourceRecordSet": {
                                    "Name": record_name,
                                    "Type": "CNAME",
                                    "TTL": 60,
                                    "ResourceRecords": [{"Value": host}],
                                },
                            }
                        ],
                    },
                )
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
                raise aws_error(f"cannot update Route 53 record {record_name}", exc) from exc
