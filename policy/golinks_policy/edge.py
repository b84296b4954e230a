"""The edge behind Cloudflare, as policies: the regional hostnames answer only what came
through this zone's Cloudflare, client rules judge the address Cloudflare forwards, the
zone speaks TLS to the origins, and every WAF block is logged."""

from __future__ import annotations

import ipaddress

from .model import Resource, Stack, violation
from .types import IP_SET, RULESET, WEB_ACL
from .waf import Request, WebAclEvaluator

#: Where Cloudflare puts the address of the client that connected to it.
CLIENT_IP_HEADER = "CF-Connecting-IP"
#: AWS managed rule groups that judge the connecting address, never a forwarded one
#: (AWS WAF developer guide, "IP reputation rule groups"): behind Cloudflare they judge Cloudflare.
SOURCE_IP_RULE_GROUPS = {
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesAnonymousIpList",
    "AWSManagedRulesBotControlRuleSet",
}
#: An address in no Cloudflare range (TEST-NET-2), and visitors' addresses (documentation ranges).
OUTSIDER = "198.51.100.7"
CLIENT = "203.0.113.9"
CLIENT_V6 = "2001:db8::7"


def walk(value):
    """Every dict nested anywhere in a property."""
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def cloudflare_sets(d: Stack) -> list[Resource]:
    """The IP sets of Cloudflare's published ranges (named golinks-<stack>-cloudflare-ipv*)."""
    return [s for s in d.of_type(IP_SET) if "-cloudflare-" in s["name"]]


def waf_evaluator(d: Stack, acl: Resource) -> WebAclEvaluator:
    return WebAclEvaluator(acl.props, {s["arn"]: s["addresses"] or [] for s in d.of_type(IP_SET)})


def cloudflare_origin_headers(d: Stack) -> dict[str, str]:
    """What the zone's request-header transform sets on requests it sends to the origins."""
    headers: dict[str, str] = {}
    for ruleset in d.of_type(RULESET):
        if ruleset["phase"] != "http_request_late_transform":
            continue
        for rule in ruleset["rules"] or []:
            if rule.get("enabled", True) is False or rule["action"] != "rewrite":
                continue
            for name, change in (
                (rule.get("action_parameters") or {}).get("headers") or {}
            ).items():
                if change.get("operation") == "set" and change.get("value"):
                    headers[name] = change["value"]
    return headers


def edge_admits_only_cloudflare(d: Stack) -> list[str]:
    """The regional hostnames answer only what came through this zone's Cloudflare.

    Judged by evaluating each web ACL on sample requests: from outside Cloudflare (even
    with the zone's secret header and a forged CF-Connecting-IP) blocked; from Cloudflare
    without the secret (any Cloudflare customer's Worker) blocked; what this zone's
    transform rule and load-balancer monitor send, allowed.
    """
    violations = []
    ranges = {s["ip_address_version"]: s["addresses"] or [] for s in cloudflare_sets(d)}
    if not (ranges.get("IPV4") and ranges.get("IPV6")):
        return [f"{d.stack}: no IPv4 and IPv6 sets of Cloudflare's ranges"]
    via_v4 = str(ipaddress.ip_network(ranges["IPV4"][0])[1])
    via_v6 = str(ipaddress.ip_network(ranges["IPV6"][0])[1])
    marked = cloudflare_origin_headers(d)
    if not marked:
        violations.append(f"{d.stack}: the zone marks no request for the origins")
    wrong = {name: f"{value}-not-it" for name, value in marked.items()}
    probes = [
        (
            f"outside Cloudflare with the zone's headers and a forged {CLIENT_IP_HEADER}",
            "BLOCK",
            Request(OUTSIDER, {**marked, CLIENT_IP_HEADER: via_v4}),
        ),
        (
            "from Cloudflare without the zone's headers",
            "BLOCK",
            Request(via_v4, {CLIENT_IP_HEADER: CLIENT}),
        ),
        (
            "from Cloudflare with wrong values",
            "BLOCK",
            Request(via_v4, {**wrong, CLIENT_IP_HEADER: CLIENT}),
        ),
        (
            "a visitor through the zone",
            "ALLOW",
            Request(via_v4, {**marked, CLIENT_IP_HEADER: CLIENT}),
        ),
        (
            "a visitor through the zone over IPv6",
            "ALLOW",
            Request(via_v6, {**marked, CLIENT_IP_HEADER: CLIENT_V6}),
        ),
    ]
    for monitor in d.of_type("cloudflare:index/loadBalancerMonitor:LoadBalancerMonitor"):
        sent = {name: values[0] for name, values in (monitor["header"] or {}).items()}
        probes.append(("the load balancer's health probe", "ALLOW", Request(via_v4, sent)))
    for acl in d.of_type(WEB_ACL):
        for what, expected, request in probes:
            verdict = waf_evaluator(d, acl).evaluate(request)
            if verdict.action != expected:
                violations.append(
                    violation(
                        acl,
                        f"{what}: {verdict.action} by {verdict.rule or 'the default action'}, "
                        f"want {expected}",
                    )
                )
    return violations


def client_rules_judge_the_forwarded_address(d: Stack) -> list[str]:
    """Behind Cloudflare the connecting address is Cloudflare's: rules about clients (rate
    limits, block lists) read CF-Connecting-IP, and no managed group that can only judge
    the connecting address is used."""
    violations = []
    gate = {s["arn"] for s in cloudflare_sets(d)}
    for acl in d.of_type(WEB_ACL):
        for node in walk(acl["rules"]):
            if "rate_based_statement" in node:
                rate = node["rate_based_statement"]
                header = (rate.get("forwarded_ip_config") or {}).get("header_name")
                if rate["aggregate_key_type"] != "FORWARDED_IP" or header != CLIENT_IP_HEADER:
                    violations.append(
                        violation(acl, f"a rate limit counts {rate['aggregate_key_type']}")
                    )
            if "ip_set_reference_statement" in node:
                reference = node["ip_set_reference_statement"]
                header = (reference.get("ip_set_forwarded_ip_config") or {}).get("header_name")
                if reference["arn"] not in gate and header != CLIENT_IP_HEADER:
                    violations.append(
                        violation(acl, "a client IP set judges the connecting address")
                    )
            group = (node.get("managed_rule_group_statement") or {}).get("name")
            if group in SOURCE_IP_RULE_GROUPS:
                violations.append(violation(acl, f"{group} can only judge Cloudflare's address"))
    return violations


def cloudflare_zone_full_strict(d: Stack) -> list[str]:
    """The zone's SSL mode is Full (strict) (Flexible loops on CloudFront's HTTPS redirect)
    and its minimum TLS version 1.2 or newer."""
    zones: dict[str, dict] = {}
    for setting in d.of_type("cloudflare:index/zoneSetting:ZoneSetting"):
        zones.setdefault(setting["zone_id"], {})[setting["setting_id"]] = setting["value"]
    if not zones:
        return [f"{d.stack}: the program sets no Cloudflare zone settings"]
    violations = []
    for zone, settings in zones.items():
        if settings.get("ssl") != "strict":
            violations.append(
                f"{d.stack}: zone {zone} SSL mode {settings.get('ssl')!r}, want strict"
            )
        if settings.get("min_tls_version") not in ("1.2", "1.3"):
            violations.append(
                f"{d.stack}: zone {zone} minimum TLS {settings.get('min_tls_version')!r}"
            )
    return violations


def waf_blocks_are_logged(d: Stack) -> list[str]:
    """Every web ACL logs its blocks to a retained aws-waf-logs-* group in us-east-1,
    with the headers the zone adds (the edge secret) redacted."""
    groups = {g["arn"]: g for g in d.of_type("aws:cloudwatch/logGroup:LogGroup")}
    logging = {
        c["resource_arn"]: c
        for c in d.of_type("aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration")
    }
    secret_headers = {name.lower() for name in cloudflare_origin_headers(d)}
    violations = []
    for acl in d.of_type(WEB_ACL):
        config = logging.get(acl["arn"])
        if config is None:
            violations.append(violation(acl, "is not logged"))
            continue
        for destination in config["log_destination_configs"] or []:
            group = groups.get(destination)
            if (
                group is None
                or not group["name"].startswith("aws-waf-logs-")
                or group.region != "us-east-1"
                or not group["retention_in_days"]
            ):
                violations.append(
                    violation(config, f"{destination} is no retained aws-waf-logs-* group")
                )
        redacted = {
            (f.get("single_header") or {}).get("name", "").lower()
            for f in config["redacted_fields"] or []
        }
        if secret_headers - redacted:
            violations.append(
                violation(config, f"logs {sorted(secret_headers - redacted)} in clear")
            )
    return violations
