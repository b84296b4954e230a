"""The static site's files, uploaded to a private bucket that CloudFront reads through OAC."""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.planning import static_site_bucket_policy


def upload_site(name: str, bucket: aws.s3.Bucket, site: Path, opts: pulumi.ResourceOptions):
    """Every file under `site` as an object of `bucket`, with its content type."""
    for path in sorted(p for p in site.rglob("*") if p.is_file()):
        key = path.relative_to(site).as_posix()
        aws.s3.BucketObjectv2(
            f"{name}-static-{key}",
            bucket=bucket.id,
            key=key,
            source=pulumi.FileAsset(str(path)),
            content_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream",
            cache_control="public, max-age=300",
            opts=opts,
        )


def admit_distribution(
    name: str,
    bucket: aws.s3.Bucket,
    distribution_arn: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> aws.s3.BucketPolicy:
    """The bucket policy that lets only this distribution (OAC) read the site."""
    return aws.s3.BucketPolicy(
        f"{name}-static",
        bucket=bucket.id,
        policy=pulumi.Output.all(bucket.arn, distribution_arn).apply(
            lambda arns: json.dumps(static_site_bucket_policy(arns[0], arns[1]))
        ),
        opts=opts,
    )
