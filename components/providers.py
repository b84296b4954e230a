"""Explicit providers: one AWS provider per region, us-east-1 for the edge, and Cloudflare.

Every component receives the provider(s) it needs; nothing relies on a default
provider or on `aws.config.region`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_cloudflare as cloudflare

from components.config import StackConfig
from components.planning import EDGE_REGION, PROJECT


@dataclass(frozen=True)
class Providers:
    regions: dict[str, aws.Provider]
    # us-east-1: CloudFront's WAF and certificate, and global IAM resources, which
    # must not move (and be replaced) when the primary region changes.
    edge: aws.Provider
    cloudflare: cloudflare.Provider | None
    """None with the Route 53 traffic router: such a stack has nothing in Cloudflare."""

    def options(self, region: str) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(provider=self.regions[region])


def make_providers(config: StackConfig) -> Providers:
    tags = aws.ProviderDefaultTagsArgs(
        tags={"project": PROJECT, "stack": config.stack, "managed-by": "pulumi"}
    )

    def aws_provider(name: str, region: str) -> aws.Provider:
        return aws.Provider(
            name,
            region=region,
            allowed_account_ids=[config.account_id],
            # Configuring a provider asks STS who it is (to check the account).
            # Asked in the edge region, a region that is down does not stop the
            # providers of the healthy ones, nor its own, from configuring; the
            # edge provider needs us-east-1 anyway. Only `region` replaces resources.
            sts_region=EDGE_REGION,
            default_tags=tags,
        )

    return Providers(
        regions={region: aws_provider(f"aws-{region}", region) for region in config.regions},
        edge=aws_provider("aws-edge", EDGE_REGION),
        # The API token comes from CLOUDFLARE_API_TOKEN, never from stack files.
        cloudflare=(
            cloudflare.Provider("cloudflare") if config.traffic_router == "cloudflare" else None
        ),
    )
