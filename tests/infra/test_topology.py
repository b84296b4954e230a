"""What each stack deploys: regions, cache members, routes, origins, pools, exports."""

from __future__ import annotations

import json

import pytest

from components.config import DEFAULTS
from lambda_package import LAMBDA_RUNTIME

from .conftest import STACKS

EXPECTED_REGIONS = {
    "prod": ["eu-west-1", "us-west-2", "ap-southeast-1"],
    "staging": ["eu-west-1", "us-west-2", "ap-southeast-1"],
    "dev": ["eu-west-1", "us-west-2"],
}


@pytest.mark.parametrize("stack", STACKS)
def test_every_region_gets_the_whole_regional_stack(deployments, stack):
    d = deployments[stack]
    regions = EXPECTED_REGIONS[stack]
    assert list(d.exports["regions"]) == regions
    functions = d.of_type("aws:lambda/function:Function")
    by_region = {
        region: sorted(
            f["name"].rsplit("-", 1)[1] for f in functions if f.provider_region == region
        )
        for region in regions
    }
    assert by_region == {
        r: (["health", "redirect", "sync"] if r == "eu-west-1" else ["health", "redirect"])
        for r in regions
    }
    assert {f["runtime"] for f in functions} == {LAMBDA_RUNTIME}
    assert {tuple(f["architectures"]) for f in functions} == {("arm64",)}
    layers = {arn.split(":")[3]: arn for arn in DEFAULTS["secretsExtensionLayerArns"]}
    for function in functions:
        assert function["layers"] == [layers[function.provider_region]]
    vpcs = d.of_type("aws:ec2/vpc:Vpc")
    assert sorted(v.provider_region for v in vpcs) == sorted(regions)
    assert len({v["cidr_block"] for v in vpcs}) == len(regions)
    subnets = d.of_type("aws:ec2/subnet:Subnet")
    assert {s["availability_zone"] for s in subnets} == {f"{r}{z}" for r in regions for z in "ab"}


@pytest.mark.parametrize("stack", STACKS)
def test_the_global_datastore_has_a_member_per_region(deployments, stack):
    d = deployments[stack]
    groups = d.of_type("aws:elasticache/replicationGroup:ReplicationGroup")
    primary = [g for g in groups if not g["global_replication_group_id"]]
    assert [g.provider_region for g in primary] == ["eu-west-1"]
    assert sorted(g.provider_region for g in groups) == sorted(EXPECTED_REGIONS[stack])
    datastore = d.one("aws:elasticache/globalReplicationGroup:GlobalReplicationGroup")
    assert datastore["primary_replication_group_id"] == primary[0].outputs["id"]
    assert datastore["engine"] == "valkey"
    for secondary in [g for g in groups if g not in primary]:
        assert (
            secondary["global_replication_group_id"]
            == datastore.outputs["global_replication_group_id"]
        )


@pytest.mark.parametrize("stack", STACKS)
def test_routes_and_function_wiring(deployments, stack):
    d = deployments[stack]
    routes = sorted(
        (r.provider_region, r["route_key"]) for r in d.of_type("aws:apigatewayv2/route:Route")
    )
    assert routes == sorted(
        (r, k) for r in EXPECTED_REGIONS[stack] for k in ("$default", "GET /healthz")
    )
    for function in d.of_type("aws:lambda/function:Function"):
        env = function["environment"]["variables"]
        assert env["LINK_STORE"] == "elasticache" and "LINK_TABLE" not in env
        assert env["REDIS_URL"].startswith("rediss://") and env["REDIS_URL"].endswith(":6379/0")
        assert (
            env["LINK_INDEX_BUCKET"]
            == d.exports["regions"][function.provider_region]["index_bucket"]
        )
        # Only the writer knows where writes go; readers are untouched by a failover.
        assert env.get("PRIMARY_REGION") == (
            "eu-west-1" if function["name"].endswith("-sync") else None
        )
        assert env["SERVICE_SECRET_ARN"].startswith(
            f"arn:aws:secretsmanager:{function.provider_region}:{d.account_id}:secret:"
        )
        if function["name"].endswith("-redirect"):  # its 404 offers to create the link there
            assert env["LINKS_REPOSITORY_URL"] == "https://github.com/example/golinks"
        else:
            assert "LINKS_REPOSITORY_URL" not in env
    notification = d.one("aws:s3/bucketNotification:BucketNotification")
    sync = next(f for f in d.of_type("aws:lambda/function:Function") if f["name"].endswith("-sync"))
    assert notification["lambda_functions"][0]["lambda_function_arn"] == sync.outputs["arn"]
    assert notification["lambda_functions"][0]["filter_prefix"] == "index/links.json"


@pytest.mark.parametrize("stack", STACKS)
def test_each_region_has_its_own_distribution_with_static_and_api_origins(deployments, stack):
    d = deployments[stack]
    distributions = d.of_type("aws:cloudfront/distribution:Distribution")
    domain = d.exports["url"].removeprefix("https://")
    assert sorted(a for dist in distributions for a in dist["aliases"]) == sorted(
        f"{r}.{domain}" for r in EXPECTED_REGIONS[stack]
    )
    for dist in distributions:
        origins = {o["origin_id"]: o for o in dist["origins"]}
        assert set(origins) == {"static-site", "api"}
        region = dist["aliases"][0].split(".")[0]
        assert origins["api"]["domain_name"] == d.exports["regions"][region][
            "api_endpoint"
        ].removeprefix("https://")
        patterns = [b["path_pattern"] for b in dist["ordered_cache_behaviors"]]
        assert patterns[:3] == ["/", "/index.html", "/static/*"]
        assert dist["default_cache_behavior"]["target_origin_id"] == "api"
    objects = {o["key"] for o in d.of_type("aws:s3/bucketObjectv2:BucketObjectv2")}
    assert {"index.html", "static/404.html"} <= objects


@pytest.mark.parametrize("stack", STACKS)
def test_cloudflare_steers_over_one_pool_per_region(deployments, stack):
    d = deployments[stack]
    pools = d.of_type("cloudflare:index/loadBalancerPool:LoadBalancerPool")
    assert sorted(p["origins"][0]["name"] for p in pools) == sorted(EXPECTED_REGIONS[stack])
    balancer = d.one("cloudflare:index/loadBalancer:LoadBalancer")
    primary_pool = next(p for p in pools if p["origins"][0]["name"] == "eu-west-1")
    assert balancer["fallback_pool"] == primary_pool.id
    assert balancer["default_pools"][0] == balancer["fallback_pool"]
    assert balancer["name"] == d.exports["url"].removeprefix("https://")
    monitor = d.one("cloudflare:index/loadBalancerMonitor:LoadBalancerMonitor")
    assert (monitor["path"], monitor["expected_codes"]) == ("/healthz", "200")


@pytest.mark.parametrize("stack", STACKS)
def test_exports_give_ci_everything_it_needs(deployments, stack):
    d = deployments[stack]
    exports = d.exports
    assert exports["index_s3_uri"] == (
        f"s3://golinks-{stack}-index-eu-west-1-{d.account_id}/index/links.json"
    )
    for region, facts in exports["regions"].items():
        assert (
            facts["healthz_url"]
            == f"https://{region}.{exports['url'].removeprefix('https://')}/healthz"
        )
        assert facts["distribution_domain"].endswith(".cloudfront.net")
        assert facts["api_endpoint"].startswith("https://") and region in facts["api_endpoint"]
    assert exports["link_store"] == "elasticache" and "link_table" not in exports
    assert exports["global_datastore_id"] == f"ldgnf-golinks-{stack}"
    assert exports["deploy_role_arn"] == f"arn:aws:iam::{d.account_id}:role/golinks-{stack}-deploy"
    assert json.dumps(exports).count("arn:aws:iam::") == 3  # deploy, publish, preview roles


@pytest.mark.parametrize("stack", STACKS)
def test_the_link_directory_comes_from_every_static_site_written_only_by_the_publisher(
    deployments, stack
):
    d = deployments[stack]
    for dist in d.of_type("aws:cloudfront/distribution:Distribution"):
        behaviours = {b["path_pattern"]: b for b in dist["ordered_cache_behaviors"]}
        for path in ("/_links", "/_links.json"):  # no function on this path
            assert behaviours[path]["target_origin_id"] == "static-site", (dist.urn, path)
    sites = {facts["static_bucket"]: region for region, facts in d.exports["regions"].items()}
    buckets = [b for b in d.of_type("aws:s3/bucket:Bucket") if b["bucket"] in sites]
    assert sorted(b.provider_region for b in buckets) == sorted(EXPECTED_REGIONS[stack])
    publisher = d.one("aws:iam/rolePolicy:RolePolicy", "-publish")
    statements = publisher.policy_document()["Statement"]
    writes = [s for s in statements if "s3:PutObject" in s["Action"]]
    directory = sorted(r for s in writes[1:] for r in s["Resource"])
    assert directory == sorted(
        f"arn:aws:s3:::{bucket}/{key}" for bucket in sites for key in ("_links", "_links.json")
    )


@pytest.mark.parametrize("stack", STACKS)
def test_failures_and_history_are_kept_where_the_runbook_says(deployments, stack):
    d = deployments[stack]
    lifecycles = d.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    assert len(lifecycles) == len(d.of_type("aws:s3/bucket:Bucket"))
    for lifecycle in lifecycles:
        expiry = lifecycle["rules"][0]["noncurrent_version_expiration"]
        assert (expiry["noncurrent_days"], expiry["newer_noncurrent_versions"]) == (90, 10)
    invoke = d.one("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")
    assert (invoke["function_name"], invoke["maximum_retry_attempts"]) == (
        f"golinks-{stack}-euw1-sync",
        2,
    )
    queue = d.one("aws:sqs/queue:Queue")
    assert (queue.provider_region, queue["message_retention_seconds"]) == ("eu-west-1", 1209600)
    topics = d.of_type("aws:sns/topic:Topic")
    assert sorted(t.provider_region for t in topics) == sorted(EXPECTED_REGIONS[stack])
    waf_logs = d.one("aws:cloudwatch/logGroup:LogGroup", "waf-logs")
    assert (waf_logs["name"], waf_logs.provider_region) == (
        f"aws-waf-logs-golinks-{stack}",
        "us-east-1",
    )
