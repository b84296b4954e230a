"""The short-link service: every region's stack of parts, steered by Cloudflare or Route 53.

One stack per environment (dev, staging, prod), each in its own AWS account.
Reading order: configuration, providers, the regional foundations (networks,
secrets, the index buckets), the link store, the regional APIs, the traffic
router, then CI access.

Two choices per stack, each a small function below, picked by its config key:
- the link store (`linkStore`): `elasticache`, a Global Datastore with a member
  per region; or `dynamodb`, a global table with a replica per region;
- the traffic router (`trafficRouter`): `route53`, one CloudFront with a
  Lambda@Edge router and Route 53 latency records with health checks; or
  `cloudflare`, the edge (WAF, certificate, one CloudFront per region) and
  Cloudflare's load balancer.
"""

from dataclasses import dataclass
from pathlib import Path

import pulumi

from components import cloudflare_ranges
from components import config as stack_config
from components.alarm_topics import AlarmTopics, AlarmTopicsArgs
from components.cloudflare_dns import CloudflareLatencyDNS, CloudflareLatencyDNSArgs
from components.edge_distribution import EdgeDistribution, EdgeDistributionArgs
from components.edge_security import EDGE_SECRET_HEADER, EdgeSecurity, EdgeSecurityArgs
from components.github_oidc import GithubDeployAccess, GithubDeployAccessArgs
from components.global_cache import CacheMember, GlobalCache, GlobalCacheArgs
from components.global_edge import GlobalEdge, GlobalEdgeArgs
from components.index_buckets import LinkIndexBuckets, LinkIndexBucketsArgs
from components.latency_routing import LatencyRouting, LatencyRoutingArgs
from components.link_store import CacheAccess, LinkStoreAccess, TableAccess
from components.link_table import LinkTable, LinkTableArgs, LinkTableRegion
from components.planning import (
    bucket_name,
    cache_member_id,
    cache_node_ids,
    primary_first,
    regional_hostname,
    repository_web_url,
    resource_name,
    short_region,
    vpc_cidr,
)
from components.providers import make_providers
from components.regional_api import RegionalApi, RegionalApiArgs
from components.regional_network import RegionalNetwork, RegionalNetworkArgs
from components.role_boundary import RoleBoundary, RoleBoundaryArgs
from components.service_secret import ServiceSecrets, ServiceSecretsArgs
from functions.edge_router import regional_origin, routing_name
from functions.links.index import build_index
from functions.links.source import load_links
from lambda_package import edge_archive_path

REPO = Path(__file__).resolve().parent
config = stack_config.load()
# A preview or update refuses to run while links/ is invalid: CI could not publish it.
link_index = build_index(load_links([REPO / "links"]))
archive_path = REPO / config.function_archive
if not archive_path.is_file():
    raise pulumi.RunError(f"{config.function_archive} is missing: run `make package` first")
archive = pulumi.FileArchive(str(archive_path))
router_archive_path = edge_archive_path(archive_path)
if config.traffic_router == "route53" and not router_archive_path.is_file():
    raise pulumi.RunError(f"{router_archive_path} is missing: run `make package` first")

providers = make_providers(config)
# Every role the deploy role may create or edit carries this boundary (IAM is global: us-east-1).
role_boundary = RoleBoundary(
    "role-boundary",
    RoleBoundaryArgs(config.stack, config.account_id),
    pulumi.ResourceOptions(provider=providers.edge),
)


def regional(region: str) -> str:
    return resource_name(config.stack, short_region(region))


alarms = AlarmTopics(
    "alarms",
    AlarmTopicsArgs(
        names={region: regional(region) for region in config.regions},
        providers=providers.regions,
        email=config.alarm_email,
    ),
)
with_cache = config.link_store == "elasticache"
secrets = ServiceSecrets(
    "service-secrets",
    ServiceSecretsArgs(
        name=f"golinks-{config.stack}/service",
        providers=providers.regions,
        disposable=config.disposable,
        redis_auth=with_cache,
    ),
)
networks = {
    region: RegionalNetwork(
        f"network-{region}",
        RegionalNetworkArgs(
            region, regional(region), vpc_cidr(config.vpc_cidr_base, index), cache=with_cache
        ),
        providers.options(region),
    )
    for index, region in enumerate(config.regions)
}
index_buckets = LinkIndexBuckets(
    "link-index",
    LinkIndexBucketsArgs(
        stack=config.stack,
        account_id=config.account_id,
        primary_region=config.primary_region,
        providers=providers.regions,
        iam_provider=providers.edge,
        disposable=config.disposable,
        alarm_topic_arns=alarms.topic_arns,
        noncurrent_version_days=config.noncurrent_version_days,
        permissions_boundary=role_boundary.arn,
    ),
)


@dataclass(frozen=True)
class LinkStore:
    access: dict[str, LinkStoreAccess]
    """Per region, how its functions reach the store."""
    outputs: dict[str, pulumi.Input[str]]
    """What the stack exports about the store."""


def elasticache_store() -> LinkStore:
    """A Global Datastore founded in its home region, one member in each region's VPC."""
    cache = GlobalCache(
        "cache",
        GlobalCacheArgs(
            stack=config.stack,
            home_region=config.datastore_home_region,
            primary_region=config.primary_region,
            members={
                region: CacheMember(
                    providers.regions[region],
                    networks[region].subnet_ids,
                    networks[region].cache_security_group_id,
                )
                for region in config.regions
            },
            auth_token=secrets.redis_auth_token,
            engine=config.cache_engine,
            engine_version=config.cache_engine_version,
            node_type=config.cache_node_type,
            replicas_per_region=config.cache_replicas_per_region,
            protect=not config.disposable,
        ),
    )
    nodes = 1 + config.cache_replicas_per_region
    return LinkStore(
        access={
            region: CacheAccess(
                reader_endpoint=cache.reader_endpoints[region],
                node_ids=cache_node_ids(cache_member_id(config.stack, region), nodes),
                writer_endpoint=(
                    cache.writer_endpoint if region == config.primary_region else None
                ),
            )
            for region in config.regions
        },
        outputs={"global_datastore_id": cache.global_id},
    )


def dynamodb_store() -> LinkStore:
    """A global table managed from its home region, one replica per region, reached from
    each VPC through a gateway endpoint; only the primary region's sync writes."""
    table = LinkTable(
        "link-table",
        LinkTableArgs(
            stack=config.stack,
            account_id=config.account_id,
            primary_region=config.primary_region,
            home_region=config.link_table_home_region,
            regions={
                region: LinkTableRegion(
                    provider=providers.regions[region],
                    vpc_id=networks[region].vpc_id,
                    route_table_ids=networks[region].route_table_ids,
                    function_security_group_id=networks[region].function_security_group_id,
                )
                for region in config.regions
            },
            protect=not config.disposable,
            alarm_actions={region: [arn] for region, arn in alarms.topic_arns.items()},
        ),
    )
    return LinkStore(
        access={
            region: TableAccess(
                table_name=table.table_name,
                reader_policy=table.reader_policy(region),
                writer_policy=table.writer_policy() if region == config.primary_region else None,
                regions=primary_first(config.regions, config.primary_region),
            )
            for region in config.regions
        },
        outputs={"link_table": table.table_name},
    )


link_store = {"elasticache": elasticache_store, "dynamodb": dynamodb_store}[config.link_store]()

apis = {
    region: RegionalApi(
        f"api-{region}",
        RegionalApiArgs(
            stack=config.stack,
            region=region,
            primary_region=config.primary_region,
            account_id=config.account_id,
            name=regional(region),
            archive=archive,
            subnet_ids=networks[region].subnet_ids,
            security_group_id=networks[region].function_security_group_id,
            store=link_store.access[region],
            secret_arn=secrets.secret_arns[region],
            index_bucket_name=index_buckets.bucket_names[region],
            index_bucket_arn=index_buckets.bucket_arns[region],
            index_key=index_buckets.index_key,
            secrets_extension_layer_arn=config.secrets_extension_layer_arns[region],
            alarm_topic_arn=alarms.topic_arns[region],
            permissions_boundary=role_boundary.arn,
            memory_mb=config.lambda_memory_mb,
            log_retention_days=config.log_retention_days,
            redirect_cache_seconds=config.redirect_cache_seconds,
            links_repository_url=repository_web_url(config.github_repository),
        ),
        providers.options(region),
    )
    for region in config.regions
}


@dataclass(frozen=True)
class Edges:
    distribution_arns: list[pulumi.Output[str]]
    """Every CloudFront distribution of the stack (a publish invalidates them)."""
    static_bucket_arns: list[pulumi.Output[str]]
    regional: dict[str, dict]
    """Per region: its hostname and the distribution that answers for it (exported)."""


def route53_router() -> Edges:
    """One CloudFront for the public hostname with a Lambda@Edge router; per region an API
    custom domain behind a Route 53 latency record with a health check."""
    routing = routing_name(config.domain)
    # Primary first: the order the router fails over in, and the static site's origins.
    serving_order = primary_first(config.regions, config.primary_region)
    edge = GlobalEdge(
        "edge",
        GlobalEdgeArgs(
            name=resource_name(config.stack),
            account_id=config.account_id,
            domain=config.domain,
            zone_id=config.route53_zone_id,
            regions=serving_order,
            routing_name=routing,
            static_bucket_names={
                region: bucket_name(config.stack, "site", region, config.account_id)
                for region in serving_order
            },
            static_site=REPO / "static-site",
            origin_verify=secrets.origin_verify,
            router_archive=pulumi.FileArchive(str(router_archive_path)),
            edge_provider=providers.edge,
            region_providers=providers.regions,
            permissions_boundary=role_boundary.arn,
            rate_limit=config.waf_rate_limit,
            max_redirect_ttl=max(config.redirect_cache_seconds, 60),
            disposable=config.disposable,
        ),
    )
    LatencyRouting(
        "origin-routing",
        LatencyRoutingArgs(
            name=resource_name(config.stack),
            zone_id=config.route53_zone_id,
            routing_name=routing,
            api_ids={region: apis[region].api_id for region in config.regions},
            region_providers=providers.regions,
            edge_provider=providers.edge,
            alarm_email=config.alarm_email,
            interval_seconds=config.health_check_interval_seconds,
            failure_threshold=config.health_check_failure_threshold,
            record_ttl=config.origin_record_ttl,
        ),
    )
    return Edges(
        distribution_arns=[edge.distribution_arn],
        static_bucket_arns=edge.static_bucket_arns,
        regional={
            region: {
                "hostname": regional_origin(region, routing),
                "distribution_domain": edge.domain_name,
                "distribution_id": edge.distribution_id,
            }
            for region in config.regions
        },
    )


def cloudflare_router() -> Edges:
    """Per region a CloudFront (one WAF and certificate for all of them), and Cloudflare's
    load balancer steering each client to the nearest healthy region."""
    edge_security = EdgeSecurity(
        "edge-security",
        EdgeSecurityArgs(
            name=resource_name(config.stack),
            domain=config.domain,
            cloudflare_zone_id=config.cloudflare_zone_id,
            edge_provider=providers.edge,
            cloudflare_provider=providers.cloudflare,
            cloudflare_ranges=cloudflare_ranges.load(),
            rate_limit=config.waf_rate_limit,
            blocked_clients=list(config.waf_blocked_clients),
            log_retention_days=config.log_retention_days,
        ),
    )
    distributions = {
        region: EdgeDistribution(
            f"edge-{region}",
            EdgeDistributionArgs(
                name=regional(region),
                hostname=regional_hostname(region, config.domain),
                static_bucket_name=bucket_name(config.stack, "site", region, config.account_id),
                static_site=REPO / "static-site",
                api_endpoint=apis[region].api_endpoint,
                origin_verify=secrets.origin_verify,
                web_acl_arn=edge_security.web_acl_arn,
                certificate_arn=edge_security.certificate_arn,
                cloudflare_zone_id=config.cloudflare_zone_id,
                region_provider=providers.regions[region],
                edge_provider=providers.edge,
                cloudflare_provider=providers.cloudflare,
                max_redirect_ttl=max(config.redirect_cache_seconds, 60),
                disposable=config.disposable,
                noncurrent_version_days=config.noncurrent_version_days,
            ),
        )
        for region in config.regions
    }
    CloudflareLatencyDNS(
        "public-hostname",
        CloudflareLatencyDNSArgs(
            name=resource_name(config.stack),
            hostname=config.domain,
            account_id=config.cloudflare_account_id,
            zone_id=config.cloudflare_zone_id,
            origins={
                region: regional_hostname(region, config.domain)
                for region in primary_first(config.regions, config.primary_region)
            },
            fallback_region=config.primary_region,
            monitor_headers={EDGE_SECRET_HEADER: edge_security.edge_secret},
        ),
        pulumi.ResourceOptions(provider=providers.cloudflare),
    )
    return Edges(
        distribution_arns=[distributions[region].distribution_arn for region in config.regions],
        static_bucket_arns=[distributions[region].static_bucket_arn for region in config.regions],
        regional={
            region: {
                "hostname": regional_hostname(region, config.domain),
                "distribution_domain": distributions[region].domain_name,
                "distribution_id": distributions[region].distribution_id,
            }
            for region in config.regions
        },
    )


edges = {"route53": route53_router, "cloudflare": cloudflare_router}[config.traffic_router]()

ci_access = GithubDeployAccess(
    "github",
    GithubDeployAccessArgs(
        stack=config.stack,
        account_id=config.account_id,
        repository=config.github_repository,
        index_bucket_arn=index_buckets.bucket_arns[config.primary_region],
        index_key=index_buckets.index_key,
        distribution_arns=edges.distribution_arns,
        static_bucket_arns=edges.static_bucket_arns,
        permissions_boundary=role_boundary.arn,
        disposable=config.disposable,
    ),
    pulumi.ResourceOptions(provider=providers.edge),  # IAM is global: keep it put
)

pulumi.export("url", f"https://{config.domain}")
pulumi.export("primary_region", config.primary_region)
pulumi.export(
    "regions",
    {
        region: {
            **edges.regional[region],
            "api_endpoint": apis[region].api_endpoint,
            "healthz_url": f"https://{edges.regional[region]['hostname']}/healthz",
            "index_bucket": index_buckets.bucket_names[region],
            "static_bucket": bucket_name(config.stack, "site", region, config.account_id),
        }
        for region in config.regions
    },
)
pulumi.export(
    "index_s3_uri",
    pulumi.Output.concat(
        "s3://", index_buckets.bucket_names[config.primary_region], "/", index_buckets.index_key
    ),
)
pulumi.export("link_store", config.link_store)
for output, value in link_store.outputs.items():
    pulumi.export(output, value)
pulumi.export("deploy_role_arn", ci_access.deploy_role_arn)
pulumi.export("publisher_role_arn", ci_access.publisher_role_arn)
pulumi.export("preview_role_arn", ci_access.preview_role_arn)
pulumi.export("link_index_version", link_index.version)
