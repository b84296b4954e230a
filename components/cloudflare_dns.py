"""CloudflareLatencyDNS: the public hostname, steered to the nearest healthy region.

A proxied Cloudflare load balancer with dynamic-latency steering over one pool
per region. Each pool's single origin is that region's CloudFront hostname,
with the Host header set to it (the public hostname is no distribution's
alias). A monitor probes every pool's /healthz; dynamic latency steering needs
monitors on every pool, and when no pool is healthy the fallback pool (the
primary region) is used. The monitor sends the headers the origins' WAF
requires (the edge secret), since a probe is not a proxied request and the
zone's transform rules do not touch it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_cloudflare as cloudflare

from functions.links.model import HEALTH_PATH

#: Failed (or good) probes in a row before a pool leaves (or rejoins) the rotation.
MONITOR_CONSECUTIVE_DOWN = 2
MONITOR_CONSECUTIVE_UP = 2


@dataclass
class CloudflareLatencyDNSArgs:
    name: str
    """Physical name prefix, e.g. golinks-prod."""
    hostname: str
    """The public hostname, e.g. go.example.com."""
    account_id: str
    zone_id: str
    origins: dict[str, str]
    """Region -> that region's CloudFront hostname, primary region first."""
    fallback_region: str
    monitor_interval: int = 60
    """Seconds between probes from each Cloudflare health-check region."""
    monitor_headers: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    """Headers every probe carries (default none), e.g. the edge secret the WAF checks."""


class CloudflareLatencyDNS(pulumi.ComponentResource):
    load_balancer_id: pulumi.Output[str]
    pool_ids: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: CloudflareLatencyDNSArgs, opts: pulumi.ResourceOptions):
        super().__init__("golinks:dns:CloudflareLatencyDNS", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        monitor = cloudflare.LoadBalancerMonitor(
            f"{name}-healthz",
            account_id=args.account_id,
            description=f"{args.name}: /{HEALTH_PATH} answers 200 (ok or degraded)",
            type="https",
            method="GET",
            path=f"/{HEALTH_PATH}",
            expected_codes="200",
            interval=args.monitor_interval,
            timeout=5,
            retries=1,
            consecutive_down=MONITOR_CONSECUTIVE_DOWN,
            consecutive_up=MONITOR_CONSECUTIVE_UP,
            follow_redirects=False,
            allow_insecure=False,
            header={header: [value] for header, value in args.monitor_headers.items()} or None,
            opts=child,
        )
        self.pool_ids = {}
        for region, origin in args.origins.items():
            pool = cloudflare.LoadBalancerPool(
                f"{name}-{region}",
                account_id=args.account_id,
                name=f"{args.name}-{region}",
                description=f"CloudFront in front of {region}",
                origins=[
                    {
                        "name": region,
                        "address": origin,
                        "enabled": True,
                        "header": {"hosts": [origin]},
                    }
                ],
                monitor=monitor.id,
                minimum_origins=1,
                opts=child,
            )
            self.pool_ids[region] = pool.id
        balancer = cloudflare.LoadBalancer(
            f"{name}-lb",
            zone_id=args.zone_id,
            name=args.hostname,
            description="Short links: nearest healthy region",
            default_pools=list(self.pool_ids.values()),
            fallback_pool=self.pool_ids[args.fallback_region],
            steering_policy="dynamic_latency",
            proxied=True,
            session_affinity="none",
            opts=child,
        )
        self.load_balancer_id = balancer.id
        self.register_outputs({"load_balancer_id": balancer.id, "pool_ids": self.pool_ids})
