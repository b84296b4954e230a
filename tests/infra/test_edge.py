"""The regional WAF evaluated on sample requests: who gets through, and who is judged by what."""

from __future__ import annotations

import ipaddress

import pytest

from components import cloudflare_ranges
from components.edge_security import CLIENT_IP_HEADER

from . import policies
from .harness import Deployment, deploy
from .waf import Request, WebAclEvaluator

CLOUDFLARE_POP = str(ipaddress.ip_network(cloudflare_ranges.load().ipv4[0])[7])


def evaluator(d: Deployment, blocked: list[str] | None = None) -> WebAclEvaluator:
    ip_sets = {s.outputs["arn"]: s["addresses"] or [] for s in d.of_type(policies.IP_SET)}
    if blocked:
        blocked_v4 = next(
            s for s in d.of_type(policies.IP_SET) if s["name"].endswith("blocked-clients-ipv4")
        )
        ip_sets[blocked_v4.outputs["arn"]] = blocked
    return WebAclEvaluator(d.one(policies.WEB_ACL).inputs, ip_sets)


def via_cloudflare(d: Deployment, client: str) -> Request:
    """What Cloudflare sends the origin for a visitor at `client`."""
    return Request(
        CLOUDFLARE_POP, {**policies.cloudflare_origin_headers(d), CLIENT_IP_HEADER: client}
    )


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_rate_limit_counts_each_client_not_the_cloudflare_data_centre(deployments, stack):
    d = deployments[stack]
    waf = evaluator(d)
    limit = d.program["config"].waf_rate_limit
    busy, quiet = "203.0.113.10", "203.0.113.20"
    verdicts = [waf.evaluate(via_cloudflare(d, busy)).action for _ in range(limit)]
    assert set(verdicts) == {"ALLOW"}
    over = waf.evaluate(via_cloudflare(d, busy))
    assert (over.action, over.rule) == ("BLOCK", "rate-limit-per-client")
    # Same Cloudflare address, another visitor: not throttled for the busy one.
    assert waf.evaluate(via_cloudflare(d, quiet)).action == "ALLOW"


def test_a_forged_client_address_from_outside_cloudflare_changes_nothing(deployments):
    d = deployments["prod"]
    headers = policies.cloudflare_origin_headers(d)  # even with the secret leaked
    waf = evaluator(d, blocked=["203.0.113.0/24"])
    for forged in ("203.0.113.10", CLOUDFLARE_POP, "not-an-address", None):
        request = Request("198.51.100.7", dict(headers))
        if forged:
            request.headers[CLIENT_IP_HEADER] = forged
        verdict = waf.evaluate(request)
        assert (verdict.action, verdict.rule) == ("BLOCK", "only-through-cloudflare"), forged


def test_blocked_clients_are_judged_by_the_address_cloudflare_forwards(deployments):
    d = deployments["prod"]
    waf = evaluator(d, blocked=["203.0.113.0/24"])
    refused = waf.evaluate(via_cloudflare(d, "203.0.113.77"))
    assert (refused.action, refused.rule) == ("BLOCK", "blocked-clients")
    assert waf.evaluate(via_cloudflare(d, "192.0.2.1")).action == "ALLOW"
    # Cloudflare always sends a valid address; a mangled one is refused, not waved through.
    assert waf.evaluate(via_cloudflare(d, "garbage")).action == "BLOCK"


def test_blocked_clients_come_from_the_stack_configuration(archive):
    d = deploy("dev", archive, {"golinks:wafBlockedClients": ["203.0.113.0/24", "2001:db8::/32"]})
    sets = {s["name"]: s["addresses"] for s in d.of_type(policies.IP_SET)}
    assert sets["golinks-dev-blocked-clients-ipv4"] == ["203.0.113.0/24"]
    assert sets["golinks-dev-blocked-clients-ipv6"] == ["2001:db8::/32"]
