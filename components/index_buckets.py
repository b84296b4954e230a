"""LinkIndexBuckets: the published link index, in every region.

CI writes the index to the primary region's bucket; S3 replication copies it
to every other region's bucket, where each region's redirect function falls
back to it when Redis cannot answer. All buckets are versioned (a bad publish
is a rollback away), encrypted, and closed to the public.

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
    index_key: str = "index/links.json"
    disposable: bool = False
    """True: buckets are emptied on destroy and unprotected (a disposable stack).
    False (default): buckets keep their objects and are protected against deletion."""


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
            )
            versionings.append(versioning)

        primary = buckets[args.primary_region]
        others = [b for region, b in buckets.items() if region != args.primary_region]
        if others:
            global_iam = pulumi.ResourceOptions(parent=self, provider=args.iam_provider)
            role = aws.iam.Role(
                f"{name}-replication",
                name=resource_name(args.stack, "index-replication"),
                assume_role_policy=json.dumps(
                    service_trust_policy("s3.amazonaws.com", args.account_id)
                ),
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
            aws.s3.BucketReplicationConfig(
                f"{name}-replication-{args.primary_region}",
                bucket=primary.id,
                role=role.arn,
                rules=[
                    {
                        "id": f"to-{region}",
                        "status": "Enabled",
                        "priority": priority,
                        "filter": {"prefix": args.index_key},
                        "delete_marker_replication": {"status": "Enabled"},
                        "destination": {"bucket": bucket.arn, "storage_class": "STANDARD"},
                    }
                    for priority, (region, bucket) in enumerate(
                        (r, b) for r, b in buckets.items() if r != args.primary_region
                    )
                ],
                # S3 refuses replication until versioning is on at both ends.
                opts=pulumi.ResourceOptions(
                    parent=self,
                    provider=args.providers[args.primary_region],
                    depends_on=versionings,
                ),
            )

        self.bucket_names = {region: bucket.bucket for region, bucket in buckets.items()}
        self.bucket_arns = {region: bucket.arn for region, bucket in buckets.items()}
        self.register_outputs({"bucket_names": self.bucket_names, "index_key": args.index_key})


def private_bucket(
    name: str,
    physical_name: str,
    opts: pulumi.ResourceOptions,
    *,
    force_destroy: bool = False,
    protect: bool = False,
) -> tuple[aws.s3.Bucket, aws.s3.BucketVersioning]:
    """A versioned bucket closed to the public, owned by its owner, encrypted at rest.

    force_destroy (default False): a destroy deletes every object version first;
    without it S3 refuses to delete a bucket that holds any. protect (default
    False): Pulumi refuses to delete the bucket at all.
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
