"""The regional WAF evaluated on sample requests: who gets through, and who is judged by what."""

from __future__ import annotations

import ipaddress

import pytest
from golinks_policy import edge
from golinks_policy.engine import stack_from_engine
from golinks_policy.model import Stack
from golinks_policy.waf import Request, WebAclEvaluator

from components import cloudflare_ranges
from components.edge_security import CLIENT_IP_HEADER

from . import policies
from .harness import Deployment, deploy

CLOUDFLARE_POP = str(ipaddress.ip_network(cloudflare_ranges.load().ipv4[0])[7])


def as_engine_sees_it(d: Deployment) -> Stack:
    return stack_from_engine(policies.engine_resources(d), policies.facts_of(d))


def evaluator(stack: Stack, blocked: list[str] | None = None) -> WebAclEvaluator:
    ip_sets = {s["arn"]: s["addresses"] or [] for s in stack.of_type(policies.IP_SET)}
    for s in stack.of_type(policies.IP_SET):
        if blocked and s["name"].endswith("blocked-clients-ipv4"):
            ip_sets[s["arn"]] = blocked
    (acl,) = stack.of_type(policies.WEB_ACL)
    return WebAclEvaluator(acl.props, ip_sets)


def via_cloudflare(stack: Stack, client: str) -> Request:
    """What Cloudflare sends the origin for a visitor at `client`."""
    return Request(
        CLOUDFLARE_POP, {**edge.cloudflare_origin_headers(stack), CLIENT_IP_HEADER: client}
    )


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_rate_limit_counts_each_client_not_the_cloudflare_data_centre(deployments, stack):
    seen = as_engine_sees_it(deployments[stack])
    waf = evaluator(seen)
    limit = deployments[stack].program["config"].waf_rate_limit
    busy, quiet = "203.0.113.10", "203.0.113.20"
    verdicts = {waf.evaluate(via_cloudflare(seen, busy)).action for _ in range(limit)}
    assert verdicts == {"ALLOW"}
    over = waf.evaluate(via_cloudflare(seen, busy))
    assert (over.action, over.rule) == ("BLOCK", "rate-limit-per-client")
    # Same Cloudflare address, another visitor: not throttled for the busy one.
    assert waf.evaluate(via_cloudflare(seen, quiet)).action == "ALLOW"


def test_a_forged_client_address_from_outside_cloudflare_changes_nothing(deployments):
    seen = as_engine_sees_it(deployments["prod"])
    leaked = edge.cloudflare_origin_headers(seen)  # even with the edge secret known
    waf = evaluator(seen, blocked=["203.0.113.0/24"])
    for forged in ("192.0.2.10", "203.0.113.10", CLOUDFLARE_POP, "not-an-address", None):
        request = Request("198.51.100.7", dict(leaked))
        if forged:
            request.headers[CLIENT_IP_HEADER] = forged
        verdict = waf.evaluate(request)
        assert (verdict.action, verdict.rule) == ("BLOCK", "only-through-cloudflare"), forged


def test_blocked_clients_are_judged_by_the_address_cloudflare_forwards(deployments):
    seen = as_engine_sees_it(deployments["prod"])
    waf = evaluator(seen, blocked=["203.0.113.0/24"])
    refused = waf.evaluate(via_cloudflare(seen, "203.0.113.77"))
    assert (refused.action, refused.rule) == ("BLOCK", "blocked-clients")
    assert waf.evaluate(via_cloudflare(seen, "192.0.2.1")).action == "ALLOW"
    # Cloudflare always sends a valid address; a mangled one is refused, not waved through.
    assert waf.evaluate(via_cloudflare(seen, "garbage")).action == "BLOCK"


def test_the_waf_knows_cloudflare_by_the_ranges_kept_in_the_repository(deployments):
    kept = cloudflare_ranges.load()
    for d in deployments.values():
        sets = {
            s["ip_address_version"]: s["addresses"]
            for s in edge.cloudflare_sets(as_engine_sees_it(d))
        }
        assert sets == {"IPV4": list(kept.ipv4), "IPV6": list(kept.ipv6)}


def test_operators_settings_reach_the_waf_and_the_alarm_topics(archive):
    d = deploy(
        "dev",
        archive,
        {
            "golinks:wafBlockedClients": ["203.0.113.0/24", "2001:db8::/32"],
            "golinks:alarmEmail": "oncall@example.com",
        },
    )
    sets = {s["name"]: s["addresses"] for s in d.of_type(policies.IP_SET)}
    assert sets["golinks-dev-blocked-clients-ipv4"] == ["203.0.113.0/24"]
    assert sets["golinks-dev-blocked-clients-ipv6"] == ["2001:db8::/32"]
    topics = {t.outputs["arn"]: t.provider_region for t in d.of_type("aws:sns/topic:Topic")}
    subscriptions = d.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert sorted(topics[s["topic"]] for s in subscriptions) == ["eu-west-1", "us-west-2"]
    assert {s["endpoint"] for s in subscriptions} == {"oncall@example.com"}
