"""LinkIndexBuckets: the published link index, in every region.

CI writes the index to the primary region's bucket; S3 replication copies it
to every other region's bucket, where each region's redirect function falls
back to it when Redis cannot answer. All buckets are versioned (a bad publish
is a rollback away, for as long as replaced versions are kept), encrypted, and
closed to the public. Replication publishes S3 replication metrics, and an
alarm in the primary region fires on any object that fails to replicate.

The replication configuration is named after its source region, so a
failover creates the new primary's and leaves the old primary's alone: an
update that must not reach an unreachable region (docs/deploy.md, runbook)
does not have to delete it there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.planning import bucket_name, replication_policy, resource_name, service_trust_policy

#: Replaced versions kept however old they are: a rollback always has this many to return to.
KEEP_NEWEST_VERSIONS = 10


@dataclass
class LinkIndexBucketsArgs:
    stack: str
    account_id: str
    primary_region: str
    """Replication flows from this region's bucket to the others."""
    providers: dict[str, pulumi.ProviderResource]
    """One AWS provider per region; each region gets a bucket."""
    iam_provider: pulumi.ProviderResource
    """Provider for the (global) replication role; stable across failovers."""
    alarm_topic_arns: dict[str, pulumi.Input[str]]
    """Region -> SNS topic its alarms notify (the replication alarm lives in the primary)."""
    permissions_boundary: pulumi.Input[str]
    """The stack's role boundary (RoleBoundary), carried by the replication role."""
    index_key: str = "index/links.json"
    disposable: bool = False
    """True: buckets are emptied on destroy and unprotected (a disposable stack).
    False (default): buckets keep their objects and are protected against deletion."""
    noncurrent_version_days: int = 90
    """Days a replaced index version is kept (the history a rollback can return to)."""


class LinkIndexBuckets(pulumi.ComponentResource):
    bucket_names: dict[str, pulumi.Output[str]]
    bucket_arns: dict[str, pulumi.Output[str]]
    index_key: str

    def __init__(
        self, name: str, args: LinkIndexBucketsArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("golinks:storage:LinkIndexBuckets", name, None, opts)
        self.index_key = args.index_key
        buckets: dict[str, aws.s3.Bucket] = {}
        versionings = []
        for region, provider in args.providers.items():
            in_region = pulumi.ResourceOptions(parent=self, provider=provider)
            physical = bucket_name(args.stack, "index", region, args.account_id)
            buckets[region], versioning = private_bucket(
                f"{name}-{region}",
                physical,
                in_region,
                force_destroy=args.disposable,
                protect=not args.disposable,
                noncurrent_version_days=args.noncurrent_version_days,
            )
            versionings.append(versioning)

        primary = buckets[args.primary_region]
        others = [b for region, b in buckets.items() if region != args.primary_region]
        if others:
            global_iam = pulumi.ResourceOptions(parent=self, provider=args.iam_provider)
            role = aws.iam.Role(
                f"{name}-replication",
                name=resource_name(args.stack, "index-replication"),
                permissions_boundary=args.permissions_boundary,
                assume_role_policy=json.dumps(service_trust_policy("s3.amazonaws.com")),
                opts=global_iam,
            )
            aws.iam.RolePolicy(
                f"{name}-replication",
                role=role.id,
                policy=pulumi.Output.all(primary.arn, *[b.arn for b in others]).apply(
                    lambda arns: json.dumps(replication_policy(arns[0], list(arns[1:])))
                ),
                opts=global_iam,
            )
            destinations = {r: b for r, b in buckets.items() if r != args.primary_region}
            aws.s3.BucketReplicationConfig(
                f"{name}-replication-{args.primary_region}",
                bucket=primary.id,
                role=role.arn,
                rules=[
                    {
                        "id": replication_rule_id(region),
                        "status": "Enabled",
                        "priority": priority,
                        "filter": {"prefix": args.index_key},
                        "delete_marker_replication": {"status": "Enabled"},
                        "destination": {
                            "bucket": bucket.arn,
                            "storage_class": "STANDARD",
                            # Publishes OperationsFailedReplication (and pending counts).
                            "metrics": {"status": "Enabled"},
                        },
                    }
                    for priority, (region, bucket) in enumerate(destinations.items())
                ],
                # S3 refuses replication until versioning is on at both ends.
                opts=pulumi.ResourceOptions(
                    parent=self,
                    provider=args.providers[args.primary_region],
                    depends_on=versionings,
                ),
            )

            self._replication_alarms(name, args, primary, destinations)

        self.bucket_names = {region: bucket.bucket for region, bucket in buckets.items()}
        self.bucket_arns = {region: bucket.arn for region, bucket in buckets.items()}
        self.register_outputs({"bucket_names": self.bucket_names, "index_key": args.index_key})

    def _replication_alarms(
        self, name: str, args: LinkIndexBucketsArgs, primary: aws.s3.Bucket, destinations: dict
    ) -> None:
        actions = [args.alarm_topic_arns[args.primary_region]]
        for region, bucket in destinations.items():
            # Named after the source too, like the replication configuration: a
            # failover creates the new primary's alarms and leaves the old ones alone.
            source = args.primary_region
            physical = resource_name(args.stack, "index-replication", source, "to", region)
            aws.cloudwatch.MetricAlarm(
                f"{name}-replication-{source}-to-{region}",
                name=f"{physical}-failed",
                alarm_description=(
                    f"The link index failed to replicate to {region}: its redirect "
                    "fallback serves an old index until the next publish replicates"
                ),
                namespace="AWS/S3",
                metric_name="OperationsFailedReplication",
                statistic="Sum",
                dimensions={
                    "SourceBucket": primary.bucket,
                    "DestinationBucket": bucket.bucket,
                    "RuleId": replication_rule_id(region),
                },
                period=300,
                evaluation_periods=1,
                comparison_operator="GreaterThanThreshold",
                threshold=0,
                treat_missing_data="notBreaching",
                alarm_actions=actions,
                ok_actions=actions,
                opts=pulumi.ResourceOptions(
                    parent=self, provider=args.providers[args.primary_region]
                ),
            )


def replication_rule_id(region: str) -> str:
    return f"to-{region}"


def private_bucket(
    name: str,
    physical_name: str,
    opts: pulumi.ResourceOptions,
    *,
    force_destroy: bool = False,
    protect: bool = False,
    noncurrent_version_days: int = 90,
) -> tuple[aws.s3.Bucket, aws.s3.BucketVersioning]:
    """A versioned bucket closed to the public, owned by its owner, encrypted at rest.

    force_destroy (default False): a destroy deletes every object version first;
    without it S3 refuses to delete a bucket that holds any. protect (default
    False): Pulumi refuses to delete the bucket at all. Replaced versions expire
    after `noncurrent_version_days` (default 90; the newest few are kept whatever
    their age), so versioning does not grow the bucket forever.
    """
    bucket = aws.s3.Bucket(
        name,
        bucket=physical_name,
        force_destroy=force_destroy,
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=protect)),
    )
    versioning = aws.s3.BucketVersioning(
        name, bucket=bucket.id, versioning_configuration={"status": "Enabled"}, opts=opts
    )
    aws.s3.BucketLifecycleConfiguration(
        name,
        bucket=bucket.id,
        rules=[
            {
                "id": "expire-replaced-versions",
                "status": "Enabled",
                "filter": {},
                "noncurrent_version_expiration": {
                    "noncurrent_days": noncurrent_version_days,
                    "newer_noncurrent_versions": KEEP_NEWEST_VERSIONS,
                },
                "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
            }
        ],
        # S3 applies noncurrent-version rules once versioning is on.
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[versioning])),
    )
    aws.s3.BucketPublicAccessBlock(
        name,
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=opts,
    )
    aws.s3.BucketOwnershipControls(
        name, bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=opts
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        name,
        bucket=bucket.id,
        rules=[
            {
                "apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"},
                "bucket_key_enabled": True,
            }
        ],
        opts=opts,
    )
    return bucket, versioning
