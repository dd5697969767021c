"""EC2 reads for environments in CUSTOMER endpoint mode: which of their VPC endpoints exist."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from mwaa_iac.adapters import aws
from mwaa_iac.adapters.aws import aws_error


@dataclass
class Network:
    region: str | None = None
    client: Any = None

    def __post_init__(self) -> None:
        if self.client is None:
            self.client = aws.client("ec2", self.region)

    def vpc_of(self, subnet_id: str) -> str | None:
        try:
            subnets = self.client.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise aws_error(f"cannot read subnet {subnet_id}", exc) from exc
        return subnets[0]["VpcId"] if subnets else None

    def endpoint_states(self, vpc_id: str, service_names: list[str]) -> dict[str, str | None]:
        """Service name -> the state of its interface endpoint in ``vpc_id`` (None: none exists)."""
        found: dict[str, str | None] = dict.fromkeys(service_names)
        try:
            pages = self.client.get_paginator("describe_vpc_endpoints").paginate(
                Filters=[
                    {"Name": "vpc-id", "Values": [vpc_id]},
                    {"Name": "service-name", "Values": service_names},
                ]
            )
            for page in pages:
                for endpoint in page.get("VpcEndpoints", []):
                    found[endpoint["ServiceName"]] = endpoint.get("State")
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise aws_error(f"cannot list the VPC endpoints of {vpc_id}", exc) from exc
        return found


def endpoint_services(environment: dict[str, Any]) -> list[str]:
    """The VPC endpoint services a CUSTOMER-mode environment needs (GetEnvironment names them)."""
    return [
        str(environment[key])
        for key in ("DatabaseVpcEndpointService", "WebserverVpcEndpointService")
        if environment.get(key)
    ]


def endpoint_fix(environment: dict[str, Any], services: list[str]) -> str:
    network = environment.get("NetworkConfiguration") or {}
    subnets = " ".join(network.get("SubnetIds", [])) or "<subnet-a> <subnet-b>"
    groups = " ".join(network.get("SecurityGroupIds", [])) or "<sg>"
    return "; ".join(
        f"aws ec2 create-vpc-endpoint --vpc-endpoint-type Interface --vpc-id <vpc> --service-name {service} "
        f"--subnet-ids {subnets} --security-group-ids {groups}"
        for service in services
    )
