"""EdgeSecurity: what every regional CloudFront distribution shares, made once per stack.

- The WAF web ACL (scope CLOUDFRONT, which AWS only accepts in us-east-1). The
  regional hostnames are public, so the first rules admit only requests that
  come from Cloudflare's published ranges AND carry the edge secret header that
  the zone's transform rule adds; everything after that judges the client by
  the address Cloudflare forwards in CF-Connecting-IP (a per-client rate limit,
  an operator's block list), because the connecting address is always
  Cloudflare's. A forged CF-Connecting-IP from anywhere else never gets that far.
- WAF logs of every block in CloudWatch Logs (`aws-waf-logs-<name>`, us-east-1),
  with the edge secret redacted.
- The Cloudflare zone: SSL mode Full (strict) (CloudFront redirects HTTP to
  HTTPS, so Flexible would loop), minimum TLS 1.2, and the request-header
  transform that adds the edge secret to what Cloudflare sends to the origins.
- The TLS certificate for the regional hostnames (`<region>.<domain>`), also
  in us-east-1 as CloudFront requires, validated through a DNS record in the
  Cloudflare zone. A custom certificate is what lets the distributions refuse
  anything older than TLS 1.2 (the *.cloudfront.net certificate cannot).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_cloudflare as cloudflare
import pulumi_random as random

from components.cloudflare_ranges import CloudflareRanges
from components.cloudfront_parts import waf_block_logs

#: The header Cloudflare's transform rule (and its health monitor) adds; the WAF requires it.
EDGE_SECRET_HEADER = "x-golinks-edge"  # noqa: S105 - the header's name, not its value
#: Where Cloudflare puts the address of the client that connected to it.
CLIENT_IP_HEADER = "CF-Connecting-IP"
#: The label the first rule puts on requests from Cloudflare's address ranges.
CLOUDFLARE_LABEL = "golinks:cloudflare-address"


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
    cloudflare_ranges: CloudflareRanges
    """Cloudflare's published address ranges (components/cloudflare_ranges.json)."""
    rate_limit: int = 2000
    """Requests per 5 minutes from one client (CF-Connecting-IP) before WAF blocks it."""
    blocked_clients: list[str] = field(default_factory=list)
    """Client networks (CIDR, IPv4 or IPv6) refused outright, judged by CF-Connecting-IP."""
    log_retention_days: int = 30
    """How long WAF logs of blocked requests are kept."""


class EdgeSecurity(pulumi.ComponentResource):
    web_acl_arn: pulumi.Output[str]
    certificate_arn: pulumi.Output[str]
    edge_secret: pulumi.Output[str]
    """The value of EDGE_SECRET_HEADER (a secret): Cloudflare's health monitor sends it too."""

    def __init__(
        self, name: str, args: EdgeSecurityArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("golinks:edge:EdgeSecurity", name, None, opts)
        in_edge = pulumi.ResourceOptions(parent=self, provider=args.edge_provider)
        in_zone = pulumi.ResourceOptions(parent=self, provider=args.cloudflare_provider)

        secret = random.RandomPassword(
            f"{name}-edge-secret",
            length=48,
            special=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.edge_secret = pulumi.Output.secret(secret.result)
        acl = self._web_acl(name, args, in_edge)
        waf_block_logs(
            name,
            args.name,
            acl,
            in_edge,
            retention_days=args.log_retention_days,
            redacted_headers=(EDGE_SECRET_HEADER,),
        )
        self._zone(name, args, in_zone)

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
            opts=in_zone,
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

    def _web_acl(
        self, name: str, args: EdgeSecurityArgs, in_edge: pulumi.ResourceOptions
    ) -> aws.wafv2.WebAcl:
        def ip_set(suffix: str, version: int, addresses: list[str], description: str):
            return aws.wafv2.IpSet(
                f"{name}-{suffix}-ipv{version}",
                name=f"{args.name}-{suffix}-ipv{version}",
                description=description,
                scope="CLOUDFRONT",
                ip_address_version=f"IPV{version}",
                addresses=addresses,
                opts=in_edge,
            )

        cloudflare_sets = [
            ip_set("cloudflare", 4, list(args.cloudflare_ranges.ipv4), "Cloudflare IPv4 ranges"),
            ip_set("cloudflare", 6, list(args.cloudflare_ranges.ipv6), "Cloudflare IPv6 ranges"),
        ]
        blocked = [ipaddress.ip_network(cidr) for cidr in args.blocked_clients]
        blocked_sets = [
            ip_set(
                "blocked-clients",
                version,
                [str(n) for n in blocked if n.version == version],
                "Clients refused by CF-Connecting-IP",
            )
            for version in (4, 6)
        ]
        client_address = {"header_name": CLIENT_IP_HEADER, "fallback_behavior": "MATCH"}

        def visibility(metric: str) -> dict:
            return {
                "cloudwatch_metrics_enabled": True,
                "metric_name": metric,
                "sampled_requests_enabled": True,
            }

        def rule(rule_name: str, priority: int, statement: dict, action: str, **extra) -> dict:
            return {
                "name": rule_name,
                "priority": priority,
                "action": {action: {}},
                "statement": statement,
                "visibility_config": visibility(rule_name),
                **extra,
            }

        rules = [
            # Labels (count, no verdict) so the next rule stays within WAF's nesting depth.
            rule(
                "cloudflare-address",
                0,
                {
                    "or_statement": {
                        "statements": [
                            {"ip_set_reference_statement": {"arn": s.arn}} for s in cloudflare_sets
                        ]
                    }
                },
                "count",
                rule_labels=[{"name": CLOUDFLARE_LABEL}],
            ),
            # Cloudflare's address alone is not enough: any Cloudflare customer's
            # Worker connects from it. Only this zone's transform adds the secret.
            rule(
                "only-through-cloudflare",
                1,
                {
                    "not_statement": {
                        "statement": {
                            "and_statement": {
                                "statements": [
                                    {
                                        "label_match_statement": {
                                            "scope": "LABEL",
                                            "key": CLOUDFLARE_LABEL,
                                        }
                                    },
                                    {
                                        "byte_match_statement": {
                                            "field_to_match": {
                                                "single_header": {"name": EDGE_SECRET_HEADER}
                                            },
                                            "positional_constraint": "EXACTLY",
                                            "search_string": self.edge_secret,
                                            "text_transformations": [
                                                {"priority": 0, "type": "NONE"}
                                            ],
                                        }
                                    },
                                ]
                            }
                        }
                    }
                },
                "block",
            ),
            rule(
                "blocked-clients",
                2,
                {
                    "or_statement": {
                        "statements": [
                            {
                                "ip_set_reference_statement": {
                                    "arn": s.arn,
                                    "ip_set_forwarded_ip_config": {
                                        **client_address,
                                        "position": "FIRST",
                                    },
                                }
                            }
                            for s in blocked_sets
                        ]
                    }
                },
                "block",
            ),
            rule(
                "rate-limit-per-client",
                3,
                {
                    "rate_based_statement": {
                        "limit": args.rate_limit,
                        "aggregate_key_type": "FORWARDED_IP",
                        "forwarded_ip_config": client_address,
                    }
                },
                "block",
            ),
            # Inspects the request itself, not its address, so Cloudflare in front changes nothing.
            {
                "name": "AWSManagedRulesCommonRuleSet",
                "priority": 4,
                "override_action": {"none": {}},
                "statement": {
                    "managed_rule_group_statement": {
                        "vendor_name": "AWS",
                        "name": "AWSManagedRulesCommonRuleSet",
                    }
                },
                "visibility_config": visibility("AWSManagedRulesCommonRuleSet"),
            },
        ]
        return aws.wafv2.WebAcl(
            f"{name}-waf",
            name=args.name,
            description="Short links: only via Cloudflare, then per-client limits, managed rules",
            scope="CLOUDFRONT",
            default_action={"allow": {}},
            rules=rules,
            visibility_config=visibility(args.name),
            opts=in_edge,
        )

    def _zone(self, name: str, args: EdgeSecurityArgs, in_zone) -> None:
        # Full (strict): Cloudflare validates the origin certificate; Flexible would
        # speak HTTP to CloudFront, which redirects to HTTPS, forever.
        for setting, value in (("ssl", "strict"), ("min_tls_version", "1.2")):
            cloudflare.ZoneSetting(
                f"{name}-{setting}",
                zone_id=args.cloudflare_zone_id,
                setting_id=setting,
                value=value,
                opts=in_zone,
            )
        cloudflare.Ruleset(
            f"{name}-edge-secret",
            zone_id=args.cloudflare_zone_id,
            name=f"{args.name}: mark requests for the regional origins",
            description="Adds the header the regional WAF requires; nothing else reaches them",
            kind="zone",
            phase="http_request_late_transform",
            rules=[
                {
                    "action": "rewrite",
                    "expression": f'(http.host eq "{args.domain}")',
                    "description": f"{EDGE_SECRET_HEADER} on every request to {args.domain}",
                    "enabled": True,
                    "action_parameters": {
                        "headers": {
                            EDGE_SECRET_HEADER: {"operation": "set", "value": self.edge_secret}
                        }
                    },
                }
            ],
            opts=in_zone,
        )
