"""GlobalCache: an ElastiCache Global Datastore with one member per region.

The datastore is founded in its home region: that member is created first and
the others join it. Writes go to whichever member is primary now, which is the
home region until an operator promotes another one (AWS has no automatic
cross-region failover); afterwards `primary_region` names the promoted region
and nothing here is replaced, only the writer endpoint moves. Every member
serves reads on its reader endpoint. Members
are single-shard (cluster mode disabled), so a sync's MULTI/EXEC spans all
keys. Secondary members inherit engine, version and node type from the Global
Datastore, which AWS requires to be identical across members. There is no
automatic cross-region failover: see the runbook in docs/deploy.md.

Two things the AWS provider does on the second day are absorbed here:
- After a failover it reads `primary_replication_group_id` back as the
  promoted member, and that argument forces replacement of the Global
  Datastore (hashicorp/terraform-provider-aws#46121): the datastore ignores
  changes to it, so a refresh never plans a replacement.
- AWS rejects node-type and engine-version changes sent to a member ("part of
  a global cluster"): they go through the Global Datastore, which changes every
  member; the founding member ignores its own copies of both.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.planning import CACHE_PORT, cache_member_id


@dataclass
class CacheMember:
    """Where one region's member lives."""

    provider: pulumi.ProviderResource
    subnet_ids: list[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]


@dataclass
class GlobalCacheArgs:
    stack: str
    home_region: str
    """Where the datastore was founded (its first primary member); never changes."""
    primary_region: str
    """Where writes go now: the home region, or the region promoted by a failover."""
    members: dict[str, CacheMember]
    """Every region's member, the primary's included (at most 3 in all)."""
    auth_token: pulumi.Input[str]
    engine: str = "valkey"
    """valkey or redis."""
    engine_version: str = "8.0"
    node_type: str = "cache.r7g.large"
    """Same in every member; burstable (t*) types cannot join a Global Datastore."""
    replicas_per_region: int = 1
    """Read replicas beside each member's primary node (>= 1 for Multi-AZ failover)."""
    protect: bool = False
    """Refuse to delete the datastore and its members (every stack that is not disposable)."""


class GlobalCache(pulumi.ComponentResource):
    reader_endpoints: dict[str, pulumi.Output[str]]
    writer_endpoint: pulumi.Output[str]
    replication_group_ids: dict[str, pulumi.Output[str]]
    global_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: GlobalCacheArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("golinks:cache:GlobalCache", name, None, opts)

        def member(
            region: str, ignore_changes: list[str] | None = None, **settings
        ) -> aws.elasticache.ReplicationGroup:
            where = args.members[region]
            in_region = pulumi.ResourceOptions(parent=self, provider=where.provider)
            group_id = cache_member_id(args.stack, region)
            subnets = aws.elasticache.SubnetGroup(
                f"{name}-{region}", name=group_id, subnet_ids=where.subnet_ids, opts=in_region
            )
            return aws.elasticache.ReplicationGroup(
                f"{name}-{region}",
                replication_group_id=group_id,
                description=f"Short links, {args.stack}, {region}",
                num_cache_clusters=1 + args.replicas_per_region,
                automatic_failover_enabled=True,
                multi_az_enabled=True,
                subnet_group_name=subnets.name,
                security_group_ids=[where.security_group_id],
                port=CACHE_PORT,
                auth_token=args.auth_token,
                auth_token_update_strategy="ROTATE",  # noqa: S106 - a mode, not a secret
                snapshot_retention_limit=1,  # the index in S3 is the source of truth
                auto_minor_version_upgrade=True,
                opts=pulumi.ResourceOptions.merge(
                    in_region,
                    pulumi.ResourceOptions(protect=args.protect, ignore_changes=ignore_changes),
                ),
                **settings,
            )

        founder = member(
            args.home_region,
            # Resizes and upgrades go through the datastore (below); sent to a
            # member, AWS refuses them.
            ignore_changes=["node_type", "engine_version"],
            engine=args.engine,
            engine_version=args.engine_version,
            node_type=args.node_type,
            at_rest_encryption_enabled=True,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
        )
        datastore = aws.elasticache.GlobalReplicationGroup(
            f"{name}-global",
            global_replication_group_id_suffix=f"golinks-{args.stack}",
            global_replication_group_description=f"Short links, {args.stack}",
            primary_replication_group_id=founder.id,
            engine=args.engine,
            engine_version=args.engine_version,
            cache_node_type=args.node_type,
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.members[args.home_region].provider,
                protect=args.protect,
                # Read back as the promoted member after a failover, and it
                # forces replacement: never act on that difference.
                ignore_changes=["primary_replication_group_id"],
            ),
        )
        groups = {args.home_region: founder}
        for region in args.members:
            if region != args.home_region:
                groups[region] = member(
                    region, global_replication_group_id=datastore.global_replication_group_id
                )

        self.global_id = datastore.global_replication_group_id
        # A secondary's primary endpoint takes writes once its member is promoted.
        self.writer_endpoint = groups[args.primary_region].primary_endpoint_address
        self.reader_endpoints = {r: g.reader_endpoint_address for r, g in groups.items()}
        self.replication_group_ids = {r: g.id for r, g in groups.items()}
        self.register_outputs(
            {
                "global_id": self.global_id,
                "writer_endpoint": self.writer_endpoint,
                "reader_endpoints": self.reader_endpoints,
            }
        )
