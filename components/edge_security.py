"""EdgeSecurity: what every regional CloudFront distribution shares, made once per stack.

- The WAF web ACL (scope CLOUDFRONT, which AWS only accepts in us-east-1):
  AWS's Core rule set, the Amazon IP reputation list and a per-IP rate limit.
- The TLS certificate for the regional hostnames (`<region>.<domain>`), also
  in us-east-1 as CloudFront requires, validated through a DNS record in the
  Cloudflare zone. A custom certificate is what lets the distributions refuse
  anything older than TLS 1.2 (the *.cloudfront.net certificate cannot).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_cloudflare as cloudflare


@dataclass
class EdgeSecurityArgs:
    name: str
    """Physical name prefix, e.g. golinks-prod."""
    domain: str
    """The public hostname; the certificate covers `*.<domain>`."""
    cloudflare_zone_id: str
    edge_provider: pulumi.ProviderResource
    """AWS provider for us-east-1."""
    cloudflare_provider: pulumi.ProviderResource
    rate_limit: int = 2000
    """Requests per 5 minutes from one IP before WAF blocks it."""


class EdgeSecurity(pulumi.ComponentResource):
    web_acl_arn: pulumi.Output[str]
    certificate_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: EdgeSecurityArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("golinks:edge:EdgeSecurity", name, None, opts)
        in_edge = pulumi.ResourceOptions(parent=self, provider=args.edge_provider)

        def visibility(metric: str) -> dict:
            return {
                "cloudwatch_metrics_enabled": True,
                "metric_name": metric,
                "sampled_requests_enabled": True,
            }

        def managed(rule_name: str, priority: int) -> dict:
            return {
                "name": rule_name,
                "priority": priority,
                "override_action": {"none": {}},
                "statement": {
                    "managed_rule_group_statement": {"vendor_name": "AWS", "name": rule_name}
                },
                "visibility_config": visibility(rule_name),
            }

        acl = aws.wafv2.WebAcl(
            f"{name}-waf",
            name=args.name,
            description="Short links: managed protections and a per-IP rate limit",
            scope="CLOUDFRONT",
            default_action={"allow": {}},
            rules=[
                managed("AWSManagedRulesAmazonIpReputationList", 0),
                managed("AWSManagedRulesCommonRuleSet", 1),
                {
                    "name": "rate-limit-per-ip",
                    "priority": 2,
                    "action": {"block": {}},
                    "statement": {
                        "rate_based_statement": {
                            "limit": args.rate_limit,
                            "aggregate_key_type": "IP",
                        }
                    },
                    "visibility_config": visibility("rate-limit-per-ip"),
                },
            ],
            visibility_config=visibility(args.name),
            opts=in_edge,
        )

        certificate = aws.acm.Certificate(
            f"{name}-certificate",
            domain_name=f"*.{args.domain}",
            validation_method="DNS",
            key_algorithm="EC_prime256v1",
            opts=in_edge,
        )
        validation = certificate.domain_validation_options[0]
        record = cloudflare.DnsRecord(
            f"{name}-certificate-validation",
            zone_id=args.cloudflare_zone_id,
            name=validation.resource_record_name.apply(lambda value: value.rstrip(".")),
            type=validation.resource_record_type,
            content=validation.resource_record_value.apply(lambda value: value.rstrip(".")),
            ttl=300,
            proxied=False,
            comment="ACM validation for the regional CloudFront hostnames",
            opts=pulumi.ResourceOptions(parent=self, provider=args.cloudflare_provider),
        )
        validated = aws.acm.CertificateValidation(
            f"{name}-certificate",
            certificate_arn=certificate.arn,
            validation_record_fqdns=[record.name],
            opts=in_edge,
        )

        self.web_acl_arn = acl.arn
        self.certificate_arn = validated.certificate_arn
        self.register_outputs({"web_acl_arn": acl.arn, "certificate_arn": self.certificate_arn})
