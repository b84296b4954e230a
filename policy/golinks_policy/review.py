"""The checks a security review applies (Checkov's AWS rules), as policies."""

from __future__ import annotations

import re

from .model import Stack, as_list, statements, violation
from .types import (
    BUCKET,
    DISTRIBUTION,
    FUNCTION,
    REPLICATION_GROUP,
    ROLE_POLICY,
    edge_functions,
    environment_of,
)

#: Actions AWS defines without resource-level permissions: "*" is the only Resource.
RESOURCELESS_ACTIONS = {
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}
#: Reads of configuration (Describe, List, Get, API Gateway's GET), which may take
#: Resource "*" when they read no data.
CONFIGURATION_READ = re.compile(r"[a-z0-9-]+:(Describe|List|Get)[A-Za-z]*\*?|apigateway:GET")
#: Reads of data: never with Resource "*".
DATA_READS = {
    "s3:GetObject",
    "s3:GetObjectVersion",
    "secretsmanager:GetSecretValue",
    "kms:Decrypt",
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "logs:GetLogEvents",
    "logs:GetQueryResults",
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
    "wafv2:GetSampledRequests",
}


def reads_configuration_only(action: str) -> bool:
    """`action` (which may end in a wildcard) reads configuration and no data."""
    pattern = re.escape(action).replace(r"\*", ".*")
    return bool(CONFIGURATION_READ.fullmatch(action)) and not any(
        re.fullmatch(pattern, data, re.I) for data in DATA_READS
    )


#: IAM actions that let a principal grant itself more (privilege escalation paths).
ESCALATION_ACTIONS = {
    "iam:PutRolePolicy",
    "iam:AttachRolePolicy",
    "iam:UpdateAssumeRolePolicy",
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:PutUserPolicy",
    "iam:AttachUserPolicy",
    "iam:CreateAccessKey",
    "iam:PassRole",
    "iam:CreateRole",
    "iam:PutRolePermissionsBoundary",
    "iam:DeleteRolePermissionsBoundary",
}
FORBIDDEN_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/AdministratorAccess",
    "arn:aws:iam::aws:policy/IAMFullAccess",
}
SECRET_NAME = re.compile(r"SECRET(?!_ARN$)|PASSWORD|PASSWD|TOKEN|PRIVATE_KEY|ACCESS_KEY", re.I)


def cache_encrypted_and_authenticated(d: Stack) -> list[str]:
    """CKV_AWS_29/30/31: at-rest and in-transit encryption, an AUTH token; Multi-AZ failover."""
    violations = []
    primary = [g for g in d.of_type(REPLICATION_GROUP) if not g["global_replication_group_id"]]
    for group in primary:
        if not group["at_rest_encryption_enabled"]:
            violations.append(
                violation(group, "at-rest encryption is off (and cannot be turned on later)")
            )
        if (
            not group["transit_encryption_enabled"]
            or group["transit_encryption_mode"] != "required"
        ):
            violations.append(violation(group, "in-transit encryption must be required"))
    for group in d.of_type(REPLICATION_GROUP):
        if not group["auth_token"]:
            violations.append(violation(group, "has no AUTH token"))
        if not (group["multi_az_enabled"] and group["automatic_failover_enabled"]):
            violations.append(violation(group, "needs Multi-AZ with automatic failover"))
    return violations


def cloudfront_https_tls_waf(d: Stack) -> list[str]:
    """CKV_AWS_34/174/68/86: HTTPS only, TLS 1.2+, WAF, HTTPS to origins."""
    violations = []
    for dist in d.of_type(DISTRIBUTION):
        behaviors = [dist["default_cache_behavior"], *(dist["ordered_cache_behaviors"] or [])]
        for behavior in behaviors:
            if behavior["viewer_protocol_policy"] not in ("redirect-to-https", "https-only"):
                violations.append(
                    violation(dist, f"behavior {behavior.get('path_pattern', '*')} allows HTTP")
                )
        certificate = dist["viewer_certificate"] or {}
        if certificate.get("cloudfront_default_certificate") or not str(
            certificate.get("minimum_protocol_version", "")
        ).startswith("TLSv1.2"):
            violations.append(violation(dist, "must require TLS 1.2 or newer"))
        if not dist["web_acl_id"]:
            violations.append(violation(dist, "has no WAF"))
        for origin in dist["origins"]:
            custom = origin.get("custom_origin_config")
            if custom and (
                custom["origin_protocol_policy"] != "https-only"
                or custom["origin_ssl_protocols"] != ["TLSv1.2"]
            ):
                violations.append(
                    violation(dist, f"origin {origin['origin_id']} must be HTTPS with TLS 1.2")
                )
    return violations


def buckets_private_encrypted_versioned(d: Stack) -> list[str]:
    """CKV_AWS_53-56/19/21: public access blocked, encrypted, versioned."""
    violations = []
    by_bucket = lambda type_: {r["bucket"]: r for r in d.of_type(type_)}  # noqa: E731
    blocks = by_bucket("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    encryption = by_bucket(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    versioning = by_bucket("aws:s3/bucketVersioning:BucketVersioning")
    for bucket in d.of_type(BUCKET):
        name = bucket["bucket"]
        block = blocks.get(name)
        flags = (
            "block_public_acls",
            "block_public_policy",
            "ignore_public_acls",
            "restrict_public_buckets",
        )
        if not block or not all(block[flag] for flag in flags):
            violations.append(violation(bucket, "public access is not fully blocked"))
        if name not in encryption:
            violations.append(violation(bucket, "is not encrypted at rest"))
        version = versioning.get(name)
        if not version or (version["versioning_configuration"] or {}).get("status") != "Enabled":
            violations.append(violation(bucket, "is not versioned"))
    return violations


def functions_hold_no_secrets(d: Stack) -> list[str]:
    """CKV_AWS_45/116/50: no secrets in environment variables; traced; logs retained."""
    violations = []
    log_groups = {g["name"]: g for g in d.of_type("aws:cloudwatch/logGroup:LogGroup")}
    # Lambda@Edge supports no X-Ray and logs to a group in each region that runs it;
    # its constraints are routing.lambda_at_edge_constraints'.
    at_edge = {f.urn for f in edge_functions(d)}
    for function in d.of_type(FUNCTION):
        for name, value in environment_of(function).items():
            if SECRET_NAME.search(name):
                violations.append(
                    violation(function, f"environment variable {name} looks like a secret")
                )
            if re.match(r"rediss?://[^/]*@", str(value)):
                violations.append(violation(function, f"{name} carries credentials"))
        if function.urn in at_edge:
            continue
        if (function["tracing_config"] or {}).get("mode") != "Active":
            violations.append(violation(function, "X-Ray tracing is not active"))
        group = log_groups.get(f"/aws/lambda/{function['name']}")
        if not group or not group["retention_in_days"]:
            violations.append(violation(function, "its log group has no retention"))
    return violations


def api_access_logged_and_throttled(d: Stack) -> list[str]:
    """CKV_AWS_76/95: every HTTP API stage logs access and is throttled."""
    violations = []
    for stage in d.of_type("aws:apigatewayv2/stage:Stage"):
        logs = stage["access_log_settings"] or {}
        if not logs.get("destination_arn") or not logs.get("format"):
            violations.append(violation(stage, "has no access logs"))
        route = stage["default_route_settings"] or {}
        if not route.get("throttling_burst_limit") or not route.get("throttling_rate_limit"):
            violations.append(violation(stage, "is not throttled"))
    return violations


def iam_least_privilege(d: Stack) -> list[str]:
    """CKV_AWS_1/49/62/63/107-111/286-289: no * actions, * resources only where AWS
    requires, no managed admin policies, no unguarded privilege escalation."""
    violations = []
    for policy in d.of_type(ROLE_POLICY):
        for statement in statements(policy.policy_document()):
            if statement.get("Effect") != "Allow":
                continue
            actions = set(as_list(statement.get("Action", [])))
            resources = as_list(statement.get("Resource", []))
            for action in actions:
                if action == "*" or action.endswith(":*"):
                    violations.append(violation(policy, f"wildcard action {action}"))
            unscoped = {
                a for a in actions - RESOURCELESS_ACTIONS if not reads_configuration_only(a)
            }
            if "*" in resources and unscoped:
                violations.append(violation(policy, f"Resource * for {sorted(unscoped)}"))
            own_roles = f"arn:aws:iam::{d.account_id}:role/golinks-{d.stack}-"
            escalating = actions & ESCALATION_ACTIONS
            if escalating and not all(str(r).startswith(own_roles) for r in resources):
                violations.append(
                    violation(policy, f"{sorted(escalating)} on {resources} escalates privileges")
                )
            passed_to = (
                statement.get("Condition", {}).get("StringEquals", {}).get("iam:PassedToService")
            )
            if "iam:PassRole" in actions and not passed_to:
                violations.append(
                    violation(policy, "iam:PassRole is not limited to the services using it")
                )
    for attachment in d.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"):
        if attachment["policy_arn"] in FORBIDDEN_MANAGED_POLICIES:
            violations.append(violation(attachment, f"attaches {attachment['policy_arn']}"))
    violations.extend(_roles_that_can_rewrite_themselves(d))
    return violations


def _roles_that_can_rewrite_themselves(d: Stack) -> list[str]:
    violations = []
    for policy in d.of_type(ROLE_POLICY):
        role_arn = f"arn:aws:iam::{d.account_id}:role/{policy['role']}"
        document = policy.policy_document()
        denied = {
            a
            for s in statements(document)
            if s.get("Effect") == "Deny" and role_arn in as_list(s.get("Resource"))
            for a in as_list(s.get("Action"))
        }
        for statement in statements(document):
            if statement.get("Effect") != "Allow":
                continue
            actions = set(as_list(statement.get("Action", [])))
            risky = actions & ESCALATION_ACTIONS - {"iam:PassRole", "iam:CreateRole"}
            if not risky:
                continue
            for pattern in as_list(statement.get("Resource", [])):
                if (
                    re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), role_arn)
                    and not risky <= denied
                ):
                    violations.append(
                        violation(policy, f"role {policy['role']} may rewrite its own permissions")
                    )
    return violations
