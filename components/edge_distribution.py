"""EdgeDistribution: one region's CloudFront distribution, its static site and its hostname.

- `/`, `/index.html`, `/static/*`, the root files and the link directory
  (`/_links`, `/_links.json`, written by each publish) come from a private S3
  bucket through Origin Access Control; its policy admits only this
  distribution. Everything else goes to the region's HTTP API with the
  x-origin-verify header, so requests that skip CloudFront (and its WAF) are
  refused by the function.
- Redirects are cached for as long as the function's Cache-Control says (the
  cache key includes the query string, which some links forward).
- HTTPS only, TLS 1.2 or newer, under the one alias `<region>.<domain>`: a
  hostname can be an alias of only one distribution, so the public hostname is
  an alias of none; Cloudflare sends it here with this Host header.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_cloudflare as cloudflare

from components.cloudfront_parts import (
    NOT_FOUND_RESPONSES,
    admit_distribution,
    origin_access_control,
    redirect_cache_policy,
    static_site_behaviors,
    upload_site,
)
from components.index_buckets import private_bucket

ORIGIN_VERIFY_HEADER = "x-origin-verify"
#: AWS managed policy (its id is fixed across accounts).
ALL_VIEWER_EXCEPT_HOST_POLICY = "b689b0a8-53d0-40ab-baf2-68738e2966ac"


@dataclass
class EdgeDistributionArgs:
    name: str
    """Physical name prefix, e.g. golinks-prod-euw1."""
    hostname: str
    """The distribution's only alias, e.g. eu-west-1.go.example.com."""
    static_bucket_name: str
    static_site: Path
    """Directory uploaded to the static bucket (index.html, static/404.html, ...)."""
    api_endpoint: pulumi.Input[str]
    """The regional HTTP API's https:// endpoint."""
    origin_verify: pulumi.Input[str]
    web_acl_arn: pulumi.Input[str]
    certificate_arn: pulumi.Input[str]
    cloudflare_zone_id: str
    region_provider: pulumi.ProviderResource
    """AWS provider of the region (the static bucket lives there)."""
    edge_provider: pulumi.ProviderResource
    """AWS provider for CloudFront (us-east-1)."""
    cloudflare_provider: pulumi.ProviderResource
    max_redirect_ttl: int = 86400
    """Upper bound on how long CloudFront keeps a redirect, whatever the function says."""
    disposable: bool = False
    """Empty the static-site bucket on destroy, so a disposable stack tears down cleanly."""
    noncurrent_version_days: int = 90
    """Days a replaced static-site file is kept."""


class EdgeDistribution(pulumi.ComponentResource):
    domain_name: pulumi.Output[str]
    distribution_arn: pulumi.Output[str]
    static_bucket_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: EdgeDistributionArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("golinks:edge:EdgeDistribution", name, None, opts)
        in_region = pulumi.ResourceOptions(parent=self, provider=args.region_provider)
        in_edge = pulumi.ResourceOptions(parent=self, provider=args.edge_provider)

        bucket, _ = private_bucket(
            f"{name}-static",
            args.static_bucket_name,
            in_region,
            force_destroy=args.disposable,
            noncurrent_version_days=args.noncurrent_version_days,
        )
        upload_site(name, bucket, args.static_site, in_region)

        access = origin_access_control(name, args.name, in_edge)
        redirects = redirect_cache_policy(name, args.name, args.max_redirect_ttl, in_edge)
        api_host = pulumi.Output.from_input(args.api_endpoint).apply(
            lambda endpoint: endpoint.removeprefix("https://").rstrip("/")
        )
        distribution = aws.cloudfront.Distribution(
            f"{name}-cdn",
            enabled=True,
            comment=f"Short links via {args.hostname}",
            aliases=[args.hostname],
            default_root_object="index.html",
            http_version="http2and3",
            is_ipv6_enabled=True,
            price_class="PriceClass_All",
            web_acl_id=args.web_acl_arn,
            origins=[
                {
                    "origin_id": "static-site",
                    "domain_name": bucket.bucket_regional_domain_name,
                    "origin_access_control_id": access.id,
                },
                {
                    "origin_id": "api",
                    "domain_name": api_host,
                    "custom_origin_config": {
                        "http_port": 80,
                        "https_port": 443,
                        "origin_protocol_policy": "https-only",
                        "origin_ssl_protocols": ["TLSv1.2"],
                    },
                    "custom_headers": [{"name": ORIGIN_VERIFY_HEADER, "value": args.origin_verify}],
                },
            ],
            default_cache_behavior={
                "target_origin_id": "api",
                "viewer_protocol_policy": "redirect-to-https",
                # Every method reaches the function, which answers 405 to all but GET/HEAD.
                "allowed_methods": ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"],
                "cached_methods": ["GET", "HEAD"],
                "cache_policy_id": redirects.id,
                "origin_request_policy_id": ALL_VIEWER_EXCEPT_HOST_POLICY,
                "compress": False,
            },
            ordered_cache_behaviors=static_site_behaviors("static-site"),
            custom_error_responses=NOT_FOUND_RESPONSES,
            restrictions={"geo_restriction": {"restriction_type": "none"}},
            viewer_certificate={
                "acm_certificate_arn": args.certificate_arn,
                "ssl_support_method": "sni-only",
                "minimum_protocol_version": "TLSv1.2_2021",
            },
            opts=in_edge,
        )
        admit_distribution(name, bucket, distribution.arn, in_region)
        cloudflare.DnsRecord(
            f"{name}-hostname",
            zone_id=args.cloudflare_zone_id,
            name=args.hostname,
            type="CNAME",
            content=distribution.domain_name,
            ttl=300,
            proxied=False,  # the load balancer in front is proxied; this is its origin
            comment="Regional CloudFront distribution (a Cloudflare load-balancer origin)",
            opts=pulumi.ResourceOptions(parent=self, provider=args.cloudflare_provider),
        )

        self.domain_name = distribution.domain_name
        self.distribution_id = distribution.id
        self.distribution_arn = distribution.arn
        self.static_bucket_arn = bucket.arn
        self.register_outputs(
            {
                "domain_name": distribution.domain_name,
                "distribution_id": distribution.id,
                "hostname": args.hostname,
                "static_bucket_arn": bucket.arn,
            }
        )
