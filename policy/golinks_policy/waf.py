"""A small evaluator of the AWS WAF (v2) web ACL rules the program writes, for sample requests.

It follows AWS's documented semantics for the statements used here (rules in
priority order; COUNT adds the rule's labels and goes on; BLOCK and ALLOW end
the evaluation; an IP set or rate-based statement reads the forwarded address
when given a forwarded-IP configuration, a missing header is no match and an
invalid one takes the fallback). Any other statement raises, so a rule this
evaluator does not understand can never pass unnoticed. Managed rule groups
inspect request content, which the sample requests keep benign: they never match.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Request:
    source_ip: str
    """The address that connected to CloudFront (Cloudflare's, for proxied traffic)."""
    headers: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


@dataclass
class Verdict:
    action: str
    """ALLOW or BLOCK."""
    rule: str | None
    """The terminating rule, None for the web ACL's default action."""


class WebAclEvaluator:
    def __init__(self, acl_inputs: dict, ip_sets: dict[str, list[str]]):
        self.rules = sorted(acl_inputs["rules"], key=lambda rule: rule["priority"])
        self.default = next(iter(acl_inputs["default_action"])).upper()
        self.ip_sets = {
            arn: [ipaddress.ip_network(cidr) for cidr in cidrs] for arn, cidrs in ip_sets.items()
        }
        self.rate_counts: dict[str, Counter] = {}

    def evaluate(self, request: Request) -> Verdict:
        labels: set[str] = set()
        for rule in self.rules:
            if not self._matches(rule["statement"], request, labels, rule["name"]):
                continue
            if "override_action" in rule:  # a managed group's own rules decide; see module doc
                continue
            action = next(iter(rule["action"])).upper()
            if action == "COUNT":
                labels.update(label["name"] for label in rule.get("rule_labels") or [])
                continue
            return Verdict(action, rule["name"])
        return Verdict(self.default, None)

    def _address(self, request: Request, forwarded: dict | None) -> str | bool | None:
        """The address to judge; None: header missing; False: header invalid."""
        if not forwarded:
            return request.source_ip
        value = request.header(forwarded["header_name"])
        if value is None:
            return None
        first = value.split(",")[0].strip()
        try:
            ipaddress.ip_address(first)
        except ValueError:
            return False
        return first

    def _matches(self, statement: dict, request: Request, labels: set[str], rule: str) -> bool:
        (kind, body), *rest = statement.items()
        if rest:
            raise ValueError(f"{rule}: a statement has one kind, got {list(statement)}")
        if kind == "and_statement":
            return all(self._matches(s, request, labels, rule) for s in body["statements"])
        if kind == "or_statement":
            return any(self._matches(s, request, labels, rule) for s in body["statements"])
        if kind == "not_statement":
            return not self._matches(body["statement"], request, labels, rule)
        if kind == "label_match_statement":
            if body["scope"] != "LABEL":
                raise ValueError(f"{rule}: label namespaces are not modelled")
            key = body["key"]
            return any(label == key or label.endswith(f":{key}") for label in labels)
        if kind == "byte_match_statement":
            return self._byte_match(body, request, rule)
        if kind == "ip_set_reference_statement":
            forwarded = body.get("ip_set_forwarded_ip_config")
            address = self._address(request, forwarded)
            if address is None:
                return False
            if address is False:
                return forwarded["fallback_behavior"] == "MATCH"
            ip = ipaddress.ip_address(address)
            return any(ip in network for network in self.ip_sets[body["arn"]])
        if kind == "rate_based_statement":
            return self._over_rate(body, request, rule)
        if kind == "managed_rule_group_statement":
            return False
        raise ValueError(f"{rule}: {kind} is not modelled")

    @staticmethod
    def _byte_match(body: dict, request: Request, rule: str) -> bool:
        field_to_match = body["field_to_match"]
        if set(field_to_match) != {"single_header"} or body["positional_constraint"] != "EXACTLY":
            raise ValueError(f"{rule}: only EXACTLY on a single header is modelled")
        if any(t["type"] != "NONE" for t in body["text_transformations"]):
            raise ValueError(f"{rule}: text transformations are not modelled")
        return request.header(field_to_match["single_header"]["name"]) == body["search_string"]

    def _over_rate(self, body: dict, request: Request, rule: str) -> bool:
        kind = body["aggregate_key_type"]
        if kind not in ("IP", "FORWARDED_IP"):
            raise ValueError(f"{rule}: aggregation {kind} is not modelled")
        forwarded = body.get("forwarded_ip_config") if kind == "FORWARDED_IP" else None
        address = self._address(request, forwarded)
        if address is None:
            return False
        if address is False:
            return forwarded["fallback_behavior"] == "MATCH"
        counts = self.rate_counts.setdefault(rule, Counter())
        counts[address] += 1
        return counts[address] > body["limit"]
