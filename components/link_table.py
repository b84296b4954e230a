"""LinkTable: the DynamoDB global table that holds the links when `linkStore: dynamodb`.

One table, created in its home region with a replica in every other region of
the stack (global tables version 2019.11.21: replicas are arguments of the
table, replicated from its NEW_AND_OLD_IMAGES stream). On-demand billing,
point-in-time recovery and deletion protection (protected stacks) on every
replica, encryption at rest with the AWS managed key (one per region, so no
key to replicate). No DynamoDB TTL: expiry is checked by the readers (see
docs/dynamodb-store.md).

The home region is where the table resource is managed from; the primary
region is where the sync writes. Every replica takes writes, so a failover
moves only the writer (its IAM and the replication alarms): the home stays, and
the table is neither replaced nor touched, which also keeps a failover update
clear of a home region that is down.

Per region: a gateway VPC endpoint for DynamoDB on the functions' route
tables, whose policy admits only this table, and the functions' egress to it;
alarms on throttled reads and writes and, in the primary region, on
replication latency to each other region. IAM is left to the functions'
roles: `reader_policy(region)` (GetItem and BatchGetItem on that region's replica) and
`writer_policy()` (the primary's writes, plus strongly consistent read-backs
in every replica for the per-region flip) are the documents they attach.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.planning import HTTPS_PORT

#: Actions the redirect and health functions need: one GetItem per request, and one
#: BatchGetItem more for a templated link (every shorter slug of the path at once).
READER_ACTIONS = ["dynamodb:BatchGetItem", "dynamodb:GetItem"]
#: The sync, in the primary region: lease, scan, batch writes, pointers.
WRITER_ACTIONS = [
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
]
#: What the sync reads in every other replica to decide a region's flip.
READ_BACK_ACTIONS = ["dynamodb:BatchGetItem", "dynamodb:GetItem"]


@dataclass
class LinkTableRegion:
    """Where one region's replica is reached from."""

    provider: pulumi.ProviderResource
    vpc_id: pulumi.Input[str]
    route_table_ids: list[pulumi.Input[str]]
    """The functions' route tables: the gateway endpoint is added to them."""
    function_security_group_id: pulumi.Input[str]
    """Given HTTPS egress to the endpoint's prefix list."""


@dataclass
class LinkTableArgs:
    stack: str
    account_id: str
    primary_region: str
    """The only region whose sync writes."""
    regions: dict[str, LinkTableRegion]
    """Every region of the stack, the primary's included."""
    home_region: str = ""
    """Where the table is created and managed from (default: the primary region). Keep it
    when the primary region moves: a table moved to another region is a new table."""
    protect: bool = False
    """Deletion protection on every replica, and Pulumi's protect (protected stacks)."""
    replication_alarm_ms: float = 10_000
    """Average ReplicationLatency to a region (5 minutes) that raises an alarm."""
    alarm_actions: dict[str, list[pulumi.Input[str]]] = field(default_factory=dict)
    """Per region, where its alarms go (default: nowhere, CloudWatch only)."""

    @property
    def table_name(self) -> str:
        return f"golinks-{self.stack}-links"

    def table_arn(self, region: str) -> str:
        return f"arn:aws:dynamodb:{region}:{self.account_id}:table/{self.table_name}"


class LinkTable(pulumi.ComponentResource):
    table_name: pulumi.Output[str]
    table_arns: dict[str, str]

    def __init__(self, name: str, args: LinkTableArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("golinks:store:LinkTable", name, None, opts)
        home = args.home_region or args.primary_region
        for role, region in (("primary", args.primary_region), ("home", home)):
            if region not in args.regions:
                raise ValueError(f"the {role} region {region} must be one of the regions")
        self._args = args
        table = aws.dynamodb.Table(
            f"{name}-table",
            name=args.table_name,
            billing_mode="PAY_PER_REQUEST",
            hash_key="pk",
            attributes=[aws.dynamodb.TableAttributeArgs(name="pk", type="S")],
            stream_enabled=True,  # global tables replicate from the stream
            stream_view_type="NEW_AND_OLD_IMAGES",
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(enabled=True),
            deletion_protection_enabled=args.protect,
            replicas=[
                aws.dynamodb.TableReplicaArgs(
                    region_name=region,
                    point_in_time_recovery=True,
                    deletion_protection_enabled=args.protect,
                    propagate_tags=True,
                )
                for region in args.regions
                if region != home
            ],
            opts=pulumi.ResourceOptions(
                parent=self, provider=args.regions[home].provider, protect=args.protect
            ),
        )
        for region, where in args.regions.items():
            self._endpoint(name, region, where)
            self._alarms(name, region)
        self.table_name = table.name
        self.table_arns = {region: args.table_arn(region) for region in args.regions}
        self.register_outputs({"table_name": self.table_name, "table_arns": self.table_arns})

    def reader_policy(self, region: str) -> str:
        """The redirect and health functions' access in `region`: reads of its replica."""
        return _policy([(READER_ACTIONS, [self._args.table_arn(region)])])

    def writer_policy(self) -> str:
        """The sync's access: writes to the primary, read-backs from every replica."""
        args = self._args
        others = [args.table_arn(r) for r in args.regions if r != args.primary_region]
        statements = [(WRITER_ACTIONS, [args.table_arn(args.primary_region)])]
        if others:
            statements.append((READ_BACK_ACTIONS, others))
        return _policy(statements)

    def _endpoint(self, name: str, region: str, where: LinkTableRegion) -> None:
        child = pulumi.ResourceOptions(parent=self, provider=where.provider)
        endpoint = aws.ec2.VpcEndpoint(
            f"{name}-{region}-endpoint",
            vpc_id=where.vpc_id,
            service_name=f"com.amazonaws.{region}.dynamodb",
            vpc_endpoint_type="Gateway",
            route_table_ids=where.route_table_ids,
            # Through this endpoint the functions reach this table and nothing else.
            policy=_policy(
                [(sorted({*WRITER_ACTIONS, *READER_ACTIONS}), [self._args.table_arn(region)])],
                principal=True,
            ),
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-{region}-functions-to-dynamodb",
            security_group_id=where.function_security_group_id,
            ip_protocol="tcp",
            from_port=HTTPS_PORT,
            to_port=HTTPS_PORT,
            prefix_list_id=endpoint.prefix_list_id,
            description="HTTPS to DynamoDB (gateway endpoint)",
            opts=child,
        )

    def _alarms(self, name: str, region: str) -> None:
        args = self._args

        def alarm(
            suffix: str, description: str, in_region: str = region, label: str = region, **settings
        ) -> None:
            actions = args.alarm_actions.get(in_region, [])
            aws.cloudwatch.MetricAlarm(
                f"{name}-{label}-{suffix}",
                name=f"{args.table_name}-{label}-{suffix}",
                alarm_description=description,
                namespace="AWS/DynamoDB",
                treat_missing_data="notBreaching",
                comparison_operator="GreaterThanThreshold",
                alarm_actions=actions,
                ok_actions=actions,
                opts=pulumi.ResourceOptions(parent=self, provider=args.regions[in_region].provider),
                **settings,
            )

        for kind in ("Read", "Write"):
            alarm(
                f"{kind.lower()}-throttles",
                f"{kind}s of the link table are throttled in {region}",
                metric_name=f"{kind}ThrottleEvents",
                dimensions={"TableName": args.table_name},
                statistic="Sum",
                period=60,
                evaluation_periods=1,
                threshold=0,
            )
        if region == args.primary_region:
            return
        # ReplicationLatency is published in the sending (primary) region, per receiver.
        # Named after both: a failover creates the new sender's alarms (in a region that
        # is up) instead of moving these out of one that may be down.
        alarm(
            "replication-latency",
            f"Link table replication to {region} lags > {args.replication_alarm_ms:.0f} ms",
            metric_name="ReplicationLatency",
            dimensions={"TableName": args.table_name, "ReceivingRegion": region},
            statistic="Average",
            period=300,
            evaluation_periods=1,
            threshold=args.replication_alarm_ms,
            in_region=args.primary_region,
            label=f"{args.primary_region}-to-{region}",
        )


def _policy(statements: list[tuple[list[str], list[str]]], *, principal: bool = False) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    **({"Principal": "*"} if principal else {}),
                    "Action": actions,
                    "Resource": resources,
                }
                for actions, resources in statements
            ],
        }
    )
