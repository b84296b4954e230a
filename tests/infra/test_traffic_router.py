"""The all-AWS traffic path (trafficRouter route53) for every stack, and its guard rails."""

from __future__ import annotations

import pytest

from . import policies
from .conftest import ROUTE53, ROUTE53_ZONE_ID
from .harness import deploy

RECORD = "aws:route53/record:Record"
HEALTH_CHECK = "aws:route53/healthCheck:HealthCheck"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def _router(d):
    return next(f for f in d.of_type(policies.FUNCTION) if f["name"].endswith("-edge-router"))


def _association(d):
    dist = d.of_type(policies.DISTRIBUTION)[0]
    return dist["default_cache_behavior"]["lambda_function_associations"][0]


def _latency(d, region):
    return next(
        r
        for r in d.of_type(RECORD)
        if (r["latency_routing_policies"] or [{}])[0].get("region") == region
    )


def _drop(d, resource):
    d.resources.remove(resource)


ROUTE53_BREAKAGES = {
    "lambda_at_edge_constraints": [
        lambda d: _router(d).inputs.update(architectures=["arm64"]),
        lambda d: _router(d).inputs.update(environment={"variables": {"ORIGIN_VERIFY": "x"}}),
        lambda d: _router(d).inputs.update(vpc_config={"subnet_ids": ["subnet-1"]}),
        lambda d: _router(d).inputs.update(timeout=31),
        lambda d: _router(d).inputs.update(layers=["arn:aws:lambda:us-east-1:1:layer:x:1"]),
        lambda d: setattr(_router(d), "provider_region", "eu-west-1"),
        lambda d: _association(d).update(lambda_arn=_router(d).outputs["arn"] + ":$LATEST"),
        lambda d: (
            _association(d).update(
                event_type="viewer-request", lambda_arn=_router(d).outputs["arn"] + ":1"
            )
            or _router(d).inputs.update(memory_size=512)
        ),
        lambda d: next(
            r for r in d.of_type(policies.ROLE) if r["name"].endswith("-edge-router")
        ).inputs.update(
            assume_role_policy='{"Statement": [{"Effect": "Allow", "Principal": '
            '{"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}'
        ),
    ],
    "every_region_has_a_checked_latency_record": [
        lambda d: _drop(d, _latency(d, "us-west-2")),
        lambda d: _latency(d, "eu-west-1").inputs.update(health_check_id=None),
        lambda d: next(
            c for c in d.of_type(HEALTH_CHECK) if c["fqdn"].startswith("ap-southeast-1.")
        ).inputs.update(resource_path="/"),
        lambda d: _drop(
            d, next(a for a in d.of_type(ALARM) if "HealthCheckId" in (a["dimensions"] or {}))
        ),
    ],
    "one_traffic_router": [
        lambda d: d.resources.append(
            __import__("dataclasses").replace(
                d.of_type(RECORD)[0],
                urn="urn:pulumi:prod::golinks::cloudflare:index/dnsRecord:DnsRecord::stray",
                type="cloudflare:index/dnsRecord:DnsRecord",
            )
        ),
    ],
    "one_distribution_per_alias": [
        lambda d: d.of_type(policies.DISTRIBUTION)[0].inputs.update(aliases=["other.example.com"]),
    ],
}


@pytest.mark.parametrize(("name", "index"), policies.variants(ROUTE53_BREAKAGES))
def test_a_broken_route53_variant_is_caught_and_named(route53_deployments, name, index):
    broken = route53_deployments["prod"].broken(ROUTE53_BREAKAGES[name][index])
    policies.assert_caught(name, broken)


def test_one_distribution_answers_for_the_public_hostname(route53_deployments):
    d = route53_deployments["prod"]
    (dist,) = d.of_type(policies.DISTRIBUTION)
    assert dist["aliases"] == ["go.example.com"]
    behavior = dist["default_cache_behavior"]
    assert behavior["target_origin_id"] == "api"
    assert behavior["allowed_methods"] == ["GET", "HEAD", "OPTIONS"]  # what origin groups allow
    (group,) = [g for g in dist["origin_groups"] if g["origin_id"] == "api"]
    assert [m["origin_id"] for m in group["members"]] == ["api-latency", "api-failover"]
    origins = {o["origin_id"]: o for o in dist["origins"]}
    assert origins["api-latency"]["domain_name"] == "origin.go.example.com"
    assert origins["api-failover"]["domain_name"] == "eu-west-1.origin.go.example.com"
    headers = {h["name"]: h["value"] for h in origins["api-latency"]["custom_headers"]}
    assert headers["x-golinks-regions"] == "eu-west-1,us-west-2,ap-southeast-1"
    assert headers["x-origin-verify"]
    aliases = [r for r in d.of_type(RECORD) if r["name"] == "go.example.com"]
    assert sorted(r["type"] for r in aliases) == ["A", "AAAA"]
    assert all(r["zone_id"] == ROUTE53_ZONE_ID for r in d.of_type(RECORD))
    # The WAF judges the client's own address: no forwarded-IP configuration.
    (acl,) = d.of_type("aws:wafv2/webAcl:WebAcl")
    assert "forwarded_ip_config" not in str(acl["rules"])
    assert not [r for r in d.resources if r.type.startswith("cloudflare:")]


def test_the_router_is_a_published_x86_function_without_environment(route53_deployments):
    d = route53_deployments["prod"]
    router = _router(d)
    assert router.provider_region == "us-east-1"
    assert (router["architectures"], router["publish"], router["timeout"]) == (["x86_64"], True, 5)
    assert router["environment"] is None and router["vpc_config"] is None
    assert router["handler"] == "functions.edge_router.handler"
    assert _association(d)["lambda_arn"] == router.outputs["arn"] + ":1"


def test_each_region_has_a_custom_domain_a_checked_latency_record_and_an_alarm(
    route53_deployments,
):
    d = route53_deployments["prod"]
    for region in ("eu-west-1", "us-west-2", "ap-southeast-1"):
        origin = f"{region}.origin.go.example.com"
        domain = next(
            r
            for r in d.of_type("aws:apigatewayv2/domainName:DomainName")
            if r["domain_name"] == origin
        )
        assert domain.provider_region == region
        assert domain["domain_name_configuration"]["endpoint_type"] == "REGIONAL"
        record = _latency(d, region)
        assert (record["name"], record["type"], record["records"]) == (
            "origin.go.example.com",
            "CNAME",
            [origin],
        )
        assert record["ttl"] == 60
        check = next(c for c in d.of_type(HEALTH_CHECK) if c["fqdn"] == origin)
        assert (check["type"], check["resource_path"], check["enable_sni"]) == (
            "HTTPS",
            "/healthz",
            True,
        )
        assert (check["request_interval"], check["failure_threshold"]) == (30, 3)


def test_health_check_timing_comes_from_config(archive):
    d = deploy(
        "dev",
        archive,
        {
            **ROUTE53,
            "golinks:healthCheckIntervalSeconds": 10,
            "golinks:healthCheckFailureThreshold": 2,
            "golinks:originRecordTtl": 30,
        },
    )
    checks = d.of_type(HEALTH_CHECK)
    assert checks and all(
        (c["request_interval"], c["failure_threshold"]) == (10, 2) for c in checks
    )
    assert {r["ttl"] for r in d.of_type(RECORD) if r["latency_routing_policies"]} == {30}


def test_a_cloudflare_stack_has_nothing_of_route53(deployments):
    for d in deployments.values():
        assert not [r for r in d.resources if r.type.startswith("aws:route53/")]
        assert not [f for f in d.of_type(policies.FUNCTION) if f["name"].endswith("-edge-router")]
