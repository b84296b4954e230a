"""GlobalEdge: the one CloudFront distribution of a Route 53-routed stack, and what it needs.

With `trafficRouter: route53` the public hostname is this distribution's only
alias (a hostname can be the alias of one distribution only), so every viewer
reaches the same distribution and a Lambda@Edge function picks the region:

- WAF web ACL (scope CLOUDFRONT, us-east-1): AWS's IP reputation list and Core
  rule set and a per-client rate limit. The connecting address is the client's
  own here (no proxy in front), so the rules use it directly. Blocks are logged
  to `aws-waf-logs-<name>` in us-east-1.
- TLS certificate for `domain` in us-east-1, validated through Route 53, and
  alias A/AAAA records for `domain`.
- The static site from private buckets through OAC, as an origin group: the
  primary region's bucket, and the next region's if it fails (every publish
  writes every region's site).
- Everything else goes to the API origin group. Its first origin is the
  latency-routed name; the origin-request function (functions/edge_router.py)
  turns it into the answering region's own name and Host. If that region
  refuses (5xx, or no connection), CloudFront retries on the failover origin,
  which the function sends to the next region. Both origins carry the
  origin-verify header (the function keeps it) and the routing headers it
  reads (it has no environment variables). Origin groups serve GET, HEAD and
  OPTIONS only; a short link needs no other method.
- The router function: us-east-1, x86_64 (Lambda@Edge has no arm64), a
  published version (triggers take numbered versions only), no environment, no
  VPC, no layers, no tracing (Lambda@Edge supports none of them), 128 MB, a
  5 s timeout (origin-request functions may take 30 s; choosing takes a DNS
  lookup at most). Its role is trusted by lambda and edgelambda and may only
  write its logs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.cloudfront_parts import (
    NOT_FOUND_RESPONSES,
    admit_distribution,
    origin_access_control,
    redirect_cache_policy,
    static_site_behaviors,
    upload_site,
    waf_block_logs,
)
from components.edge_distribution import ALL_VIEWER_EXCEPT_HOST_POLICY
from components.index_buckets import private_bucket
from components.planning import edge_log_group
from functions.edge_router import FAILOVER_ROUTE, REGIONS_HEADER, ROUTE_HEADER, regional_origin
from functions.origin import ORIGIN_VERIFY_HEADER
from lambda_package import EDGE_ROUTER_HANDLER, LAMBDA_RUNTIME

#: CloudFront's own hosted zone, the target zone of every alias record to a distribution.
CLOUDFRONT_ZONE_ID = "Z2FDTNDATAQYW2"
#: Origin-request functions may run up to 30 s; viewer ones 5 s.
ROUTER_TIMEOUT_SECONDS = 5
FAILOVER_STATUS_CODES = [500, 502, 503, 504]


@dataclass
class GlobalEdgeArgs:
    name: str
    """Physical name prefix, e.g. golinks-prod."""
    account_id: str
    domain: str
    """The public hostname: the distribution's alias and the certificate's name."""
    zone_id: str
    """The Route 53 hosted zone holding `domain`."""
    regions: list[str]
    """Serving regions, primary first: the failover order of the router and the static site."""
    routing_name: str
    """The latency-routed origin name (origin.<domain>)."""
    static_bucket_names: dict[str, str]
    """Region -> its static-site bucket (every publish writes each; the first two serve)."""
    static_site: Path
    origin_verify: pulumi.Input[str]
    router_archive: pulumi.Archive
    """The router's archive (lambda_package.build_edge_archive)."""
    edge_provider: pulumi.ProviderResource
    """AWS provider for us-east-1 (CloudFront, WAF, the certificate, Lambda@Edge, Route 53)."""
    region_providers: dict[str, pulumi.ProviderResource]
    permissions_boundary: pulumi.Input[str]
    """The stack's role boundary: the router's role carries it like every workload role."""
    rate_limit: int = 2000
    """Requests per 5 minutes from one client address before WAF blocks it."""
    max_redirect_ttl: int = 86400
    log_retention_days: int = 30
    disposable: bool = False
    blocked_clients: list[str] = field(default_factory=list)
    """Client networks (CIDR) refused outright."""


class GlobalEdge(pulumi.ComponentResource):
    domain_name: pulumi.Output[str]
    distribution_id: pulumi.Output[str]
    distribution_arn: pulumi.Output[str]
    static_bucket_arns: list[pulumi.Output[str]]
    router_version_arn: pulumi.Output[str]

    def __init__(self, name: str, args: GlobalEdgeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("golinks:edge:GlobalEdge", name, None, opts)
        in_edge = pulumi.ResourceOptions(parent=self, provider=args.edge_provider)
        # Publishing writes every region's site; the first two serve it (an origin group).
        site_regions = args.regions[:2]
        buckets = {}
        for region in args.regions:
            in_region = pulumi.ResourceOptions(parent=self, provider=args.region_providers[region])
            bucket, _ = private_bucket(
                f"{name}-{region}-static",
                args.static_bucket_names[region],
                in_region,
                force_destroy=args.disposable,
            )
            upload_site(f"{name}-{region}", bucket, args.static_site, in_region)
            buckets[region] = bucket

        acl = self._web_acl(name, args, in_edge)
        waf_block_logs(name, args.name, acl, in_edge, retention_days=args.log_retention_days)
        certificate_arn = self._certificate(name, args, in_edge)
        router = self._router(name, args, in_edge)
        access = origin_access_control(name, args.name, in_edge)
        redirects = redirect_cache_policy(name, args.name, args.max_redirect_ttl, in_edge)
        regions_value = ",".join(args.regions)

        def api_origin(origin_id: str, domain: str, route: str | None) -> dict:
            headers = [
                {"name": ORIGIN_VERIFY_HEADER, "value": args.origin_verify},
                {"name": REGIONS_HEADER, "value": regions_value},
            ]
            if route:
                headers.append({"name": ROUTE_HEADER, "value": route})
            return {
                "origin_id": origin_id,
                "domain_name": domain,
                "custom_origin_config": {
                    "http_port": 80,
                    "https_port": 443,
                    "origin_protocol_policy": "https-only",
                    "origin_ssl_protocols": ["TLSv1.2"],
                },
                "custom_headers": headers,
            }

        def origin_group(group_id: str, primary: str, failover: str) -> dict:
            return {
                "origin_id": group_id,
                "failover_criteria": {"status_codes": FAILOVER_STATUS_CODES},
                "members": [{"origin_id": primary}, {"origin_id": failover}],
            }

        static_origins = [
            {
                "origin_id": f"static-site-{region}",
                "domain_name": buckets[region].bucket_regional_domain_name,
                "origin_access_control_id": access.id,
            }
            for region in site_regions
        ]
        groups = [
            origin_group(
                "api",
                "api-latency",
                "api-failover",
            )
        ]
        static_target = static_origins[0]["origin_id"]
        if len(site_regions) > 1:
            groups.append(origin_group("static-site", *(o["origin_id"] for o in static_origins)))
            static_target = "static-site"
        distribution = aws.cloudfront.Distribution(
            f"{name}-cdn",
            enabled=True,
            comment=f"Short links via {args.domain} (Route 53 latency routing)",
            aliases=[args.domain],
            default_root_object="index.html",
            http_version="http2and3",
            is_ipv6_enabled=True,
            price_class="PriceClass_All",
            web_acl_id=acl.arn,
            origins=[
                *static_origins,
                api_origin("api-latency", args.routing_name, None),
                api_origin(
                    "api-failover",
                    regional_origin(args.regions[0], args.routing_name),
                    FAILOVER_ROUTE,
                ),
            ],
            origin_groups=groups,
            default_cache_behavior={
                "target_origin_id": "api",
                "viewer_protocol_policy": "redirect-to-https",
                "allowed_methods": ["GET", "HEAD", "OPTIONS"],
                "cached_methods": ["GET", "HEAD"],
                "cache_policy_id": redirects.id,
                "origin_request_policy_id": ALL_VIEWER_EXCEPT_HOST_POLICY,
                "compress": False,
                "lambda_function_associations": [
                    {
                        "event_type": "origin-request",
                        "lambda_arn": router.qualified_arn,
                        "include_body": False,
                    }
                ],
            },
            ordered_cache_behaviors=static_site_behaviors(static_target),
            custom_error_responses=NOT_FOUND_RESPONSES,
            restrictions={"geo_restriction": {"restriction_type": "none"}},
            viewer_certificate={
                "acm_certificate_arn": certificate_arn,
                "ssl_support_method": "sni-only",
                "minimum_protocol_version": "TLSv1.2_2021",
            },
            opts=in_edge,
        )
        for region, bucket in buckets.items():
            admit_distribution(
                f"{name}-{region}",
                bucket,
                distribution.arn,
                pulumi.ResourceOptions(parent=self, provider=args.region_providers[region]),
            )
        for record_type in ("A", "AAAA"):
            aws.route53.Record(
                f"{name}-alias-{record_type.lower()}",
                zone_id=args.zone_id,
                name=args.domain,
                type=record_type,
                aliases=[
                    {
                        "name": distribution.domain_name,
                        "zone_id": CLOUDFRONT_ZONE_ID,
                        "evaluate_target_health": False,
                    }
                ],
                opts=in_edge,
            )

        self.domain_name = distribution.domain_name
        self.distribution_id = distribution.id
        self.distribution_arn = distribution.arn
        self.static_bucket_arns = [bucket.arn for bucket in buckets.values()]
        self.router_version_arn = router.qualified_arn
        self.register_outputs(
            {
                "domain_name": distribution.domain_name,
                "distribution_id": distribution.id,
                "router_version_arn": router.qualified_arn,
            }
        )

    def _web_acl(self, name: str, args: GlobalEdgeArgs, in_edge) -> aws.wafv2.WebAcl:
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

        rules = [
            managed("AWSManagedRulesAmazonIpReputationList", 0),
            managed("AWSManagedRulesCommonRuleSet", 1),
            {
                "name": "rate-limit-per-client",
                "priority": 2,
                "action": {"block": {}},
                "statement": {
                    "rate_based_statement": {"limit": args.rate_limit, "aggregate_key_type": "IP"}
                },
                "visibility_config": visibility("rate-limit-per-client"),
            },
        ]
        return aws.wafv2.WebAcl(
            f"{name}-waf",
            name=args.name,
            description="Short links: managed protections and a per-client rate limit",
            scope="CLOUDFRONT",
            default_action={"allow": {}},
            rules=rules,
            visibility_config=visibility(args.name),
            opts=in_edge,
        )

    def _certificate(self, name: str, args: GlobalEdgeArgs, in_edge) -> pulumi.Output[str]:
        certificate = aws.acm.Certificate(
            f"{name}-certificate",
            domain_name=args.domain,
            validation_method="DNS",
            key_algorithm="EC_prime256v1",
            opts=in_edge,
        )
        return validated_through_route53(name, certificate, args.zone_id, in_edge)

    def _router(self, name: str, args: GlobalEdgeArgs, in_edge) -> aws.lambda_.Function:
        function_name = f"{args.name}-edge-router"
        role = aws.iam.Role(
            f"{name}-router",
            name=function_name,
            permissions_boundary=args.permissions_boundary,
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {
                                "Service": ["lambda.amazonaws.com", "edgelambda.amazonaws.com"]
                            },
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
            opts=in_edge,
        )
        # Lambda@Edge writes its logs in the region that ran it, to a group it creates.
        logs = f"arn:aws:logs:*:{args.account_id}:log-group:{edge_log_group(function_name)}"
        policy = aws.iam.RolePolicy(
            f"{name}-router",
            role=role.id,
            policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "WriteOwnLogs",
                            "Effect": "Allow",
                            "Action": [
                                "logs:CreateLogGroup",
                                "logs:CreateLogStream",
                                "logs:PutLogEvents",
                            ],
                            "Resource": [logs, f"{logs}:*"],
                        }
                    ],
                }
            ),
            opts=in_edge,
        )
        return aws.lambda_.Function(
            f"{name}-router",
            name=function_name,
            role=role.arn,
            runtime=LAMBDA_RUNTIME,
            architectures=["x86_64"],
            handler=EDGE_ROUTER_HANDLER,
            code=args.router_archive,
            memory_size=128,
            timeout=ROUTER_TIMEOUT_SECONDS,
            publish=True,
            opts=pulumi.ResourceOptions.merge(in_edge, pulumi.ResourceOptions(depends_on=[policy])),
        )


def validated_through_route53(
    name: str, certificate: aws.acm.Certificate, zone_id: str, opts: pulumi.ResourceOptions
) -> pulumi.Output[str]:
    """The certificate's ARN once ACM has seen its validation record in the hosted zone."""
    validation = certificate.domain_validation_options[0]
    record = aws.route53.Record(
        f"{name}-certificate-validation",
        zone_id=zone_id,
        name=validation.resource_record_name,
        type=validation.resource_record_type,
        records=[validation.resource_record_value],
        ttl=300,
        allow_overwrite=True,
        opts=opts,
    )
    validated = aws.acm.CertificateValidation(
        f"{name}-certificate",
        certificate_arn=certificate.arn,
        validation_record_fqdns=[record.fqdn],
        opts=opts,
    )
    return validated.certificate_arn
