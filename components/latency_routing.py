"""LatencyRouting: each region's API under an origin name, latency records and health checks.

For every region:

- the HTTP API gets a regional custom domain `<region>.origin.<domain>` with a
  regional ACM certificate validated through Route 53, and an alias A record
  to it: a name CloudFront reaches with valid TLS;
- a Route 53 health check probes `https://<region>.origin.<domain>/healthz`
  every `interval` seconds from Route 53's checker regions and calls the region
  unhealthy after `failure_threshold` failures in a row. Route 53 health checks
  cannot send headers, so /healthz answers a probe without the origin-verify
  header with its status alone (ok, degraded or down, and the status code);
  everything else still needs the header;
- a latency CNAME record for the shared routing name `origin.<domain>` points
  at the region's name, tied to its health check: Route 53 answers with the
  nearest region whose check passes (and with all of them if none does);
- an alarm on the health check (Route 53 publishes its metrics in us-east-1, so the
  alarm and its topic live there).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.global_edge import validated_through_route53
from functions.edge_router import regional_origin
from functions.links.model import HEALTH_PATH


@dataclass
class LatencyRoutingArgs:
    name: str
    """Physical name prefix, e.g. golinks-prod."""
    zone_id: str
    routing_name: str
    """The latency-routed name, origin.<domain>."""
    api_ids: dict[str, pulumi.Input[str]]
    """Region -> that region's HTTP API id."""
    region_providers: dict[str, pulumi.ProviderResource]
    edge_provider: pulumi.ProviderResource
    """AWS provider for us-east-1 (Route 53 and its metrics)."""
    alarm_email: str = ""
    """Subscribed to the health-check alarms' topic in us-east-1 (alarm actions must be in
    the alarm's region). Empty: no subscription; the topic is there to subscribe to."""
    interval_seconds: int = 30
    """Seconds between one checker's probes: 30 (standard) or 10 (fast, costs more)."""
    failure_threshold: int = 3
    """Failed probes in a row before a region leaves the answers."""
    record_ttl: int = 60
    """TTL of the latency records: resolvers may keep an answer this long."""


class LatencyRouting(pulumi.ComponentResource):
    health_check_ids: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: LatencyRoutingArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("golinks:dns:LatencyRouting", name, None, opts)
        in_edge = pulumi.ResourceOptions(parent=self, provider=args.edge_provider)
        self.health_check_ids = {}
        # Alarms notify a topic of their own region: Route 53's metrics are in us-east-1.
        # The topic exists without an address too, for an on-call tool to subscribe.
        topic = aws.sns.Topic(f"{name}-alarms", name=f"{args.name}-route53-alarms", opts=in_edge)
        if args.alarm_email:
            aws.sns.TopicSubscription(
                f"{name}-alarms-email",
                topic=topic.arn,
                protocol="email",
                endpoint=args.alarm_email,
                opts=in_edge,
            )
        actions = [topic.arn]
        for region, api_id in args.api_ids.items():
            in_region = pulumi.ResourceOptions(parent=self, provider=args.region_providers[region])
            origin = regional_origin(region, args.routing_name)
            certificate = aws.acm.Certificate(
                f"{name}-{region}-certificate",
                domain_name=origin,
                validation_method="DNS",
                key_algorithm="EC_prime256v1",
                opts=in_region,
            )
            certificate_arn = validated_through_route53(
                f"{name}-{region}",
                certificate,
                args.zone_id,
                pulumi.ResourceOptions(parent=self, provider=args.region_providers[region]),
            )
            domain = aws.apigatewayv2.DomainName(
                f"{name}-{region}",
                domain_name=origin,
                domain_name_configuration={
                    "certificate_arn": certificate_arn,
                    "endpoint_type": "REGIONAL",
                    "security_policy": "TLS_1_2",
                },
                opts=in_region,
            )
            aws.apigatewayv2.ApiMapping(
                f"{name}-{region}",
                api_id=api_id,
                domain_name=domain.id,
                stage="$default",
                opts=in_region,
            )
            target = domain.domain_name_configuration
            aws.route53.Record(
                f"{name}-{region}-origin",
                zone_id=args.zone_id,
                name=origin,
                type="A",
                aliases=[
                    {
                        "name": target.target_domain_name,
                        "zone_id": target.hosted_zone_id,
                        "evaluate_target_health": False,
                    }
                ],
                opts=in_edge,
            )
            check = aws.route53.HealthCheck(
                f"{name}-{region}",
                type="HTTPS",
                fqdn=origin,
                port=443,
                resource_path=f"/{HEALTH_PATH}",
                enable_sni=True,
                request_interval=args.interval_seconds,
                failure_threshold=args.failure_threshold,
                measure_latency=False,
                tags={"Name": f"{args.name}-{region}"},
                opts=in_edge,
            )
            self.health_check_ids[region] = check.id
            aws.route53.Record(
                f"{name}-{region}-latency",
                zone_id=args.zone_id,
                name=args.routing_name,
                type="CNAME",
                ttl=args.record_ttl,
                records=[origin],
                set_identifier=region,
                latency_routing_policies=[{"region": region}],
                health_check_id=check.id,
                opts=in_edge,
            )
            aws.cloudwatch.MetricAlarm(
                f"{name}-{region}-unhealthy",
                name=f"{args.name}-{region}-unhealthy",
                alarm_description=f"Route 53 takes {region} out of the latency answers",
                namespace="AWS/Route53",
                metric_name="HealthCheckStatus",
                dimensions={"HealthCheckId": check.id},
                statistic="Minimum",
                period=60,
                evaluation_periods=1,
                comparison_operator="LessThanThreshold",
                threshold=1,
                treat_missing_data="breaching",
                alarm_actions=actions,
                ok_actions=actions,
                opts=in_edge,
            )
        self.register_outputs({"health_check_ids": self.health_check_ids})
