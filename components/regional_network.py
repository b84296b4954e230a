"""RegionalNetwork: a private VPC for one region's functions and cache. No NAT, no internet.

Functions reach S3 through a gateway endpoint and Secrets Manager through an
interface endpoint; the cache (when the stack has one) accepts only the
functions on its port. Without a cache there is no cache security group and no
Redis rule. Security group rules are standalone resources (the groups carry no
inline rules, so the provider drops AWS's default allow-all egress), so other
components add theirs (the link table's gateway endpoint, on `route_table_ids`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.planning import CACHE_PORT, HTTPS_PORT, subnet_plan


@dataclass
class RegionalNetworkArgs:
    region: str
    """AWS region, e.g. eu-west-1 (the provider in opts must be for this region)."""
    name: str
    """Physical name prefix, e.g. golinks-prod-euw1."""
    cidr: str
    """The VPC's block, e.g. 10.40.0.0/16; split into one private /20 per availability zone."""
    cache: bool = True
    """Whether the region has a cache: its security group and the Redis rules between it and
    the functions (default True; False with linkStore dynamodb)."""


class RegionalNetwork(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    subnet_ids: list[pulumi.Output[str]]
    route_table_ids: list[pulumi.Output[str]]
    """The functions' subnets' route tables (gateway endpoints go on them)."""
    function_security_group_id: pulumi.Output[str]
    cache_security_group_id: pulumi.Output[str] | None
    """None without a cache."""

    def __init__(self, name: str, args: RegionalNetworkArgs, opts: pulumi.ResourceOptions):
        super().__init__("golinks:network:RegionalNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,  # the Secrets Manager endpoint's private DNS needs it
            tags={"Name": args.name},
            opts=child,
        )
        routes = aws.ec2.RouteTable(
            f"{name}-private", vpc_id=vpc.id, tags={"Name": f"{args.name}-private"}, opts=child
        )
        self.subnet_ids = []
        for zone, block in subnet_plan(args.region, args.cidr):
            subnet = aws.ec2.Subnet(
                f"{name}-{zone}",
                vpc_id=vpc.id,
                cidr_block=block,
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={"Name": f"{args.name}-{zone}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-{zone}", subnet_id=subnet.id, route_table_id=routes.id, opts=child
            )
            self.subnet_ids.append(subnet.id)

        s3 = aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[routes.id],
            opts=child,
        )
        functions = aws.ec2.SecurityGroup(
            f"{name}-functions",
            vpc_id=vpc.id,
            description="Lambda functions: out to the "
            + ("cache" if args.cache else "link table")
            + ", S3 and Secrets Manager only",
            opts=child,
        )
        endpoints = aws.ec2.SecurityGroup(
            f"{name}-endpoints", vpc_id=vpc.id, description="Interface endpoints", opts=child
        )

        def allow(rule, suffix: str, group, port: int, why: str, **peer) -> None:
            rule(f"{name}-{suffix}", security_group_id=group.id, ip_protocol="tcp",
                 from_port=port, to_port=port, description=why, opts=child, **peer)  # fmt: skip

        # The only traffic this VPC allows.
        ingress, egress = aws.vpc.SecurityGroupIngressRule, aws.vpc.SecurityGroupEgressRule
        self.cache_security_group_id = None
        if args.cache:
            cache = aws.ec2.SecurityGroup(
                f"{name}-cache", vpc_id=vpc.id, description="Cache nodes", opts=child
            )
            allow(ingress, "cache-from-functions", cache, CACHE_PORT, "Redis from the functions",
                  referenced_security_group_id=functions.id)  # fmt: skip
            allow(egress, "functions-to-cache", functions, CACHE_PORT, "Redis to the cache",
                  referenced_security_group_id=cache.id)  # fmt: skip
            self.cache_security_group_id = cache.id
        allow(egress, "functions-to-s3", functions, HTTPS_PORT, "HTTPS to S3 (gateway endpoint)",
              prefix_list_id=s3.prefix_list_id)  # fmt: skip
        allow(egress, "functions-to-endpoints", functions, HTTPS_PORT, "HTTPS to endpoints",
              referenced_security_group_id=endpoints.id)  # fmt: skip
        allow(ingress, "endpoints-from-functions", endpoints, HTTPS_PORT, "HTTPS from functions",
              referenced_security_group_id=functions.id)  # fmt: skip
        aws.ec2.VpcEndpoint(
            f"{name}-secretsmanager",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.region}.secretsmanager",
            vpc_endpoint_type="Interface",
            private_dns_enabled=True,
            subnet_ids=self.subnet_ids,
            security_group_ids=[endpoints.id],
            opts=child,
        )

        self.vpc_id = vpc.id
        self.route_table_ids = [routes.id]
        self.function_security_group_id = functions.id
        self.register_outputs(
            {
                "vpc_id": vpc.id,
                "subnet_ids": self.subnet_ids,
                "route_table_ids": self.route_table_ids,
                "function_security_group_id": functions.id,
                "cache_security_group_id": self.cache_security_group_id,
            }
        )
