"""Resource types and small readers the validators share."""

from __future__ import annotations

from .model import Resource, as_list, statements

FUNCTION = "aws:lambda/function:Function"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
GLOBAL_GROUP = "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup"
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
BUCKET = "aws:s3/bucket:Bucket"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
PERMISSION = "aws:lambda/permission:Permission"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
IP_SET = "aws:wafv2/ipSet:IpSet"
RULESET = "cloudflare:index/ruleset:Ruleset"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
QUEUE = "aws:sqs/queue:Queue"


def environment_of(function: Resource) -> dict:
    return (function["environment"] or {}).get("variables") or {}


def purpose_of(function: Resource) -> str:
    """golinks-<stack>-<region>-redirect -> redirect."""
    return function["name"].rsplit("-", 1)[-1]


def inline_documents(d) -> dict[str, dict]:
    """Each role's inline policies as one document (a role may have several)."""
    merged: dict[str, dict] = {}
    for policy in d.of_type(ROLE_POLICY):
        document = merged.setdefault(policy["role"], {"Statement": []})
        document["Statement"].extend(statements(policy.policy_document()))
    return merged


def allowed_actions(document: dict) -> set[str]:
    return {
        a
        for s in statements(document)
        if s.get("Effect") == "Allow"
        for a in as_list(s.get("Action", []))
    }


def edge_functions(d) -> list[Resource]:
    """Functions a CloudFront distribution triggers (Lambda@Edge), by their version ARN."""
    associated = {
        str(a.get("lambda_arn", "")).rsplit(":", 1)[0]
        for dist in d.of_type(DISTRIBUTION)
        for behavior in [
            dist["default_cache_behavior"] or {},
            *(dist["ordered_cache_behaviors"] or []),
        ]
        for a in behavior.get("lambda_function_associations") or []
    }
    return [f for f in d.of_type(FUNCTION) if f["arn"] in associated]
