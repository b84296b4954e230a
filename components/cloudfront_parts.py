"""What every CloudFront set-up of the service builds the same way: the static site's files
in a private bucket read through OAC, the redirects' cache policy, WAF block logs."""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.planning import static_path_patterns, static_site_bucket_policy

#: AWS managed cache policy (its id is fixed across accounts).
CACHING_OPTIMIZED_POLICY = "658327ea-f89d-4fab-a63d-7e88639e58f6"
NOT_FOUND_PAGE = "/static/404.html"


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


def origin_access_control(
    name: str, physical_name: str, opts: pulumi.ResourceOptions
) -> aws.cloudfront.OriginAccessControl:
    return aws.cloudfront.OriginAccessControl(
        f"{name}-oac",
        name=physical_name,
        description="CloudFront reads the static site with SigV4",
        origin_access_control_origin_type="s3",
        signing_behavior="always",
        signing_protocol="sigv4",
        opts=opts,
    )


def redirect_cache_policy(
    name: str, physical_name: str, max_ttl: int, opts: pulumi.ResourceOptions
) -> aws.cloudfront.CachePolicy:
    """Cache what the redirect function allows (at most `max_ttl`); the query is in the key."""
    return aws.cloudfront.CachePolicy(
        f"{name}-redirects",
        name=f"{physical_name}-redirects",
        comment="Cache what the redirect function allows; the query is part of the key",
        min_ttl=0,
        default_ttl=0,
        max_ttl=max_ttl,
        parameters_in_cache_key_and_forwarded_to_origin={
            "query_strings_config": {"query_string_behavior": "all"},
            "headers_config": {"header_behavior": "none"},
            "cookies_config": {"cookie_behavior": "none"},
        },
        opts=opts,
    )


def waf_block_logs(
    name: str,
    physical_name: str,
    acl: aws.wafv2.WebAcl,
    opts: pulumi.ResourceOptions,
    *,
    retention_days: int,
    redacted_headers: tuple[str, ...] = (),
) -> None:
    """The web ACL's blocks (only those) in `aws-waf-logs-<name>`, `redacted_headers` hidden."""
    # WAF delivers to CloudWatch Logs only in a group named aws-waf-logs-*.
    logs = aws.cloudwatch.LogGroup(
        f"{name}-waf-logs",
        name=f"aws-waf-logs-{physical_name}",
        retention_in_days=retention_days,
        opts=opts,
    )
    aws.wafv2.WebAclLoggingConfiguration(
        f"{name}-waf-logs",
        resource_arn=acl.arn,
        log_destination_configs=[logs.arn],
        redacted_fields=[{"single_header": {"name": header}} for header in redacted_headers],
        logging_filter={
            "default_behavior": "DROP",
            "filters": [
                {
                    "behavior": "KEEP",
                    "requirement": "MEETS_ANY",
                    "conditions": [{"action_condition": {"action": "BLOCK"}}],
                }
            ],
        },
        opts=opts,
    )


def static_site_behaviors(target_origin_id: str) -> list[dict]:
    """The static site's paths, cached as files, from `target_origin_id`."""
    return [
        {
            "path_pattern": pattern,
            "target_origin_id": target_origin_id,
            "viewer_protocol_policy": "redirect-to-https",
            "allowed_methods": ["GET", "HEAD"],
            "cached_methods": ["GET", "HEAD"],
            "cache_policy_id": CACHING_OPTIMIZED_POLICY,
            "compress": True,
        }
        for pattern in static_path_patterns()
    ]


#: A 404 from anywhere shows the site's page (kept a minute).
NOT_FOUND_RESPONSES = [
    {
        "error_code": 404,
        "response_code": 404,
        "response_page_path": NOT_FOUND_PAGE,
        "error_caching_min_ttl": 60,
    }
]
