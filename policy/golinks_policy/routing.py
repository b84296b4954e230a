"""The traffic router's rules: Lambda@Edge's constraints, Route 53 latency routing with
health checks, and one router per stack (nothing Cloudflare with Route 53, and back)."""

from __future__ import annotations

import functools
from collections.abc import Callable

from .model import Stack, violation
from .types import DISTRIBUTION, FUNCTION, ROLE, edge_functions

EDGE_REGION = "us-east-1"
HEALTH_CHECK = "aws:route53/healthCheck:HealthCheck"
RECORD = "aws:route53/record:Record"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
API = "aws:apigatewayv2/api:Api"
#: Lambda@Edge quotas by trigger: timeout (s) and memory (MB) at most.
EDGE_LIMITS = {
    "origin-request": (30, 10240),
    "origin-response": (30, 10240),
    "viewer-request": (5, 128),
    "viewer-response": (5, 128),
}
EDGE_TRUST = {"lambda.amazonaws.com", "edgelambda.amazonaws.com"}


def lambda_at_edge_constraints(d: Stack) -> list[str]:
    """Lambda@Edge: us-east-1, x86_64, a numbered version, no environment, VPC, layers or
    X-Ray, timeouts and memory within the trigger's quota, a role edgelambda may assume."""
    violations = []
    functions = {f["arn"]: f for f in d.of_type(FUNCTION)}
    roles = {r["arn"]: r for r in d.of_type(ROLE)}
    for dist in d.of_type(DISTRIBUTION):
        behaviors = [dist["default_cache_behavior"] or {}, *(dist["ordered_cache_behaviors"] or [])]
        for behavior in behaviors:
            for association in behavior.get("lambda_function_associations") or []:
                arn, _, version = str(association["lambda_arn"]).rpartition(":")
                function = functions.get(arn)
                if function is None or not version.isdigit():
                    violations.append(
                        violation(dist, f"{association['lambda_arn']} is not a numbered version")
                    )
                    continue
                timeout, memory = EDGE_LIMITS[association["event_type"]]
                if (function["timeout"] or 3) > timeout or (
                    function["memory_size"] or 128
                ) > memory:
                    violations.append(
                        violation(
                            function,
                            f"a {association['event_type']} function may run {timeout} s "
                            f"and use {memory} MB at most",
                        )
                    )
    for function in edge_functions(d):
        violations += [
            violation(function, f"Lambda@Edge: {p}") for p in _edge_problems(function, roles)
        ]
    return violations


def _edge_problems(function, roles: dict) -> list[str]:
    problems = []
    if function.region != EDGE_REGION:
        problems.append(f"is in {function.region}, not {EDGE_REGION}")
    if (function["architectures"] or ["x86_64"]) != ["x86_64"]:
        problems.append("must run on x86_64 (Lambda@Edge has no arm64)")
    if not function["publish"]:
        problems.append("publishes no version")
    unsupported = {
        "environment variables": (function["environment"] or {}).get("variables"),
        "a VPC": function["vpc_config"],
        "layers": function["layers"],
        "X-Ray tracing": (function["tracing_config"] or {}).get("mode") == "Active",
        "a dead-letter queue": function["dead_letter_config"],
    }
    problems += [
        f"has {what}, which Lambda@Edge does not support" for what, v in unsupported.items() if v
    ]
    role = roles.get(function["role"])
    trusted = set()
    if role is not None:
        for statement in role.policy_document("assume_role_policy")["Statement"]:
            services = (statement.get("Principal") or {}).get("Service", [])
            trusted |= {services} if isinstance(services, str) else set(services)
    if not trusted >= EDGE_TRUST:
        problems.append("its role must be assumable by lambda and edgelambda")
    return problems


def every_region_has_a_checked_latency_record(d: Stack) -> list[str]:
    """Route 53: each region with an API has a latency record tied to an HTTPS health check
    of its /healthz, and an alarm on that check in us-east-1 (where its metrics are)."""
    if d.facts.traffic_router != "route53":
        return []
    violations = []
    # A health check's id is the last part of its ARN (arn:aws:route53:::healthcheck/<id>).
    checks_by_id = {str(c["arn"]).rsplit("/", 1)[-1]: c for c in d.of_type(HEALTH_CHECK)}
    latency = [r for r in d.of_type(RECORD) if r["latency_routing_policies"]]
    regions = sorted({api.region for api in d.of_type(API)})
    for region in regions:
        records = [r for r in latency if r["latency_routing_policies"][0]["region"] == region]
        if len(records) != 1:
            violations.append(f"{d.stack}: {len(records)} latency records for {region}, want 1")
            continue
        record = records[0]
        check = checks_by_id.get(record["health_check_id"])
        if check is None:
            violations.append(violation(record, "has no health check"))
            continue
        target = (record["records"] or [""])[0]
        if (check["type"], check["fqdn"], check["resource_path"]) != ("HTTPS", target, "/healthz"):
            violations.append(
                violation(check, f"must probe https://{target}/healthz, the record's answer")
            )
        alarmed = any(
            (a["dimensions"] or {}).get("HealthCheckId") == record["health_check_id"]
            and a.region == EDGE_REGION
            for a in d.of_type(ALARM)
        )
        if not alarmed:
            violations.append(violation(check, f"has no alarm in {EDGE_REGION}"))
    names = {r["name"] for r in latency}
    if len(names) > 1:
        violations.append(f"{d.stack}: latency records under several names {sorted(names)}")
    return violations


def one_traffic_router(d: Stack) -> list[str]:
    """Nothing of Cloudflare in a route53 stack, nothing of Route 53 in a cloudflare one."""
    if d.facts.traffic_router == "route53":
        foreign = [r for r in d.resources if r.type.startswith("cloudflare:")]
    else:
        foreign = [r for r in d.resources if r.type.startswith("aws:route53/")]
    return [
        violation(r, f"does not belong in a {d.facts.traffic_router}-routed stack") for r in foreign
    ]


def only_with(router: str, validator: Callable[[Stack], list[str]]):
    """`validator` for stacks routed by `router`; other stacks have nothing it judges."""

    @functools.wraps(validator)
    def validate(d: Stack) -> list[str]:
        return validator(d) if d.facts.traffic_router == router else []

    return validate
