"""After a Global Datastore failover, the program moves writes without replacing the cache."""

from __future__ import annotations

from . import policies

CACHE_TYPES = (
    policies.REPLICATION_GROUP,
    policies.GLOBAL_GROUP,
    "aws:elasticache/subnetGroup:SubnetGroup",
)
STABLE_TYPES = (*CACHE_TYPES, policies.ROLE, "aws:iam/openIdConnectProvider:OpenIdConnectProvider")


def snapshot(d, types) -> dict:
    return {(r.type, r.name): (r.provider_region, r.inputs) for r in d.resources if r.type in types}


def test_the_cache_and_global_identities_are_untouched(deployments, promoted):
    before, after = snapshot(deployments["prod"], CACHE_TYPES), snapshot(promoted, CACHE_TYPES)
    assert before == after
    roles_before = {k: v[0] for k, v in snapshot(deployments["prod"], STABLE_TYPES).items()}
    roles_after = {k: v[0] for k, v in snapshot(promoted, STABLE_TYPES).items()}
    moved = {
        k for k in roles_before.keys() & roles_after.keys() if roles_before[k] != roles_after[k]
    }
    assert moved == set(), f"would be replaced: {moved}"


def test_writes_publishing_and_fallback_follow_the_promoted_region(promoted):
    assert promoted.exports["primary_region"] == "us-west-2"
    sync = [f for f in promoted.of_type(policies.FUNCTION) if f["name"].endswith("-sync")]
    assert [f.provider_region for f in sync] == ["us-west-2"]
    writer = next(
        g for g in promoted.of_type(policies.REPLICATION_GROUP) if g.provider_region == "us-west-2"
    )
    assert (
        writer.outputs["primary_endpoint_address"]
        in sync[0]["environment"]["variables"]["REDIS_URL"]
    )
    assert promoted.exports["index_s3_uri"].startswith("s3://golinks-prod-index-us-west-2-")
    notification = promoted.one("aws:s3/bucketNotification:BucketNotification")
    assert notification["bucket"].startswith("golinks-prod-index-us-west-2-")
    replication = promoted.one("aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    assert replication["bucket"].startswith("golinks-prod-index-us-west-2-")
    balancer = promoted.one("cloudflare:index/loadBalancer:LoadBalancer")
    pools = {
        p["origins"][0]["name"]: p.id
        for p in promoted.of_type("cloudflare:index/loadBalancerPool:LoadBalancerPool")
    }
    assert balancer["fallback_pool"] == pools["us-west-2"]


def test_the_promoted_topology_satisfies_every_policy(promoted):
    assert policies.report(promoted) == {}
