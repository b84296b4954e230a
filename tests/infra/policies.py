"""Policies over what the program would create. Each returns its violations, naming the URN.

They encode the cloud's own constraints (DESIGN.md section 7: what AWS or
Cloudflare would reject at `pulumi up`) and the checks a security review
(Checkov's AWS rules) would apply. Each has a test that breaks a copy of a
real deployment and sees the policy fail.
"""

from __future__ import annotations

import re

from components.github_oidc import READ_ONLY_POLICY
from components.planning import (
    EDGE_REGION,
    GITHUB_AUDIENCE,
    GITHUB_OIDC_HOST,
    github_subject,
    preview_environment,
)

from .harness import Deployment, Resource

FUNCTION = "aws:lambda/function:Function"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
GLOBAL_GROUP = "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup"
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
BUCKET = "aws:s3/bucket:Bucket"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
PERMISSION = "aws:lambda/permission:Permission"

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


def _v(resource: Resource, message: str) -> str:
    return f"{resource.urn}: {message}"


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _env(function: Resource) -> dict:
    return (function["environment"] or {}).get("variables") or {}


def _purpose(function: Resource) -> str:
    return function["name"].rsplit("-", 1)[-1]


# -- DESIGN.md section 7: what the cloud would reject -------------------------------


def one_distribution_per_alias(d: Deployment) -> list[str]:
    """A hostname can be an alias of only one CloudFront distribution (CNAMEAlreadyExists)."""
    public = d.exports.get("url", "").removeprefix("https://")
    seen: dict[str, Resource] = {}
    violations = []
    for dist in d.of_type(DISTRIBUTION):
        for alias in dist["aliases"] or []:
            if alias in seen:
                violations.append(_v(dist, f"alias {alias} is already on {seen[alias].urn}"))
            if alias == public:
                violations.append(_v(dist, f"the public hostname {alias} must be no alias"))
            seen[alias] = dist
    return violations


def api_only_through_cloudfront(d: Deployment) -> list[str]:
    """HTTP APIs take no WAF: it sits on CloudFront; the origin-verify header guards the API."""
    violations = [
        _v(r, "a WAF association on an API Gateway HTTP API is not possible")
        for r in d.of_type("aws:wafv2/webAclAssociation:WebAclAssociation")
    ]
    acls = {r.outputs.get("arn") for r in d.of_type("aws:wafv2/webAcl:WebAcl")}
    for dist in d.of_type(DISTRIBUTION):
        if dist["web_acl_id"] not in acls:
            violations.append(_v(dist, "has no WAF web ACL"))
        for origin in dist["origins"]:
            if "custom_origin_config" in origin:
                headers = {h["name"]: h["value"] for h in origin.get("custom_headers") or []}
                if not headers.get("x-origin-verify"):
                    violations.append(
                        _v(dist, f"origin {origin['origin_id']} lacks x-origin-verify")
                    )
    for function in d.of_type(FUNCTION):
        if _purpose(function) == "redirect" and "SERVICE_SECRET_ARN" not in _env(function):
            violations.append(
                _v(function, "cannot check x-origin-verify without the service secret")
            )
    return violations


def edge_resources_in_us_east_1(d: Deployment) -> list[str]:
    """CLOUDFRONT-scope web ACLs and CloudFront's ACM certificates exist only in us-east-1."""
    violations = []
    for acl in d.of_type("aws:wafv2/webAcl:WebAcl"):
        if acl["scope"] != "CLOUDFRONT" or acl.provider_region != EDGE_REGION:
            violations.append(_v(acl, f"scope {acl['scope']} in {acl.provider_region}"))
    certificates = {c.outputs.get("arn"): c for c in d.of_type("aws:acm/certificate:Certificate")}
    for dist in d.of_type(DISTRIBUTION):
        arn = (dist["viewer_certificate"] or {}).get("acm_certificate_arn")
        certificate = certificates.get(arn)
        if certificate is None or certificate.provider_region != EDGE_REGION:
            violations.append(_v(dist, f"certificate {arn} is not a us-east-1 ACM certificate"))
    return violations


def global_datastore_membership(d: Deployment) -> list[str]:
    """At most 2 secondaries; one node type, engine and version; no t-class; in a VPC."""
    violations = []
    groups = d.of_type(REPLICATION_GROUP)
    primaries = [g for g in groups if not g["global_replication_group_id"]]
    secondaries = [g for g in groups if g["global_replication_group_id"]]
    if len(primaries) != 1:
        violations.append(f"{d.stack}: {len(primaries)} primary replication groups, want 1")
    if len(secondaries) > 2:
        violations.extend(
            _v(g, "a Global Datastore takes at most 2 secondaries") for g in secondaries[2:]
        )
    for datastore in d.of_type(GLOBAL_GROUP):
        for primary in primaries:
            for key, global_key in (
                ("engine", "engine"),
                ("engine_version", "engine_version"),
                ("node_type", "cache_node_type"),
            ):
                if primary[key] != datastore[global_key]:
                    violations.append(
                        _v(primary, f"{key} {primary[key]} differs from the datastore's")
                    )
    for group in groups:
        if str(group["node_type"] or "").startswith("cache.t"):
            violations.append(_v(group, f"burstable node type {group['node_type']}"))
        if not group["subnet_group_name"]:
            violations.append(_v(group, "is not in a VPC subnet group"))
    for group in secondaries:
        for key in ("engine", "engine_version", "node_type"):
            if group[key] is not None and any(group[key] != p[key] for p in primaries):
                violations.append(_v(group, f"overrides {key}; members must match the primary"))
    return violations


def only_the_primary_region_writes(d: Deployment) -> list[str]:
    """Secondary members are read-only: the writer (sync) exists only in the primary region."""
    primary = d.exports["primary_region"]
    writer = next(
        g.outputs["primary_endpoint_address"]
        for g in d.of_type(REPLICATION_GROUP)
        if g.provider_region == primary
    )
    violations = []
    for function in d.of_type(FUNCTION):
        url = _env(function).get("REDIS_URL", "")
        writes = writer in url
        if _purpose(function) == "sync":
            if function.provider_region != primary or not writes:
                violations.append(_v(function, f"sync must write to the primary in {primary}"))
        elif writes:
            violations.append(_v(function, "a reading function points at the writer endpoint"))
    return violations


def functions_in_vpc_with_endpoints(d: Deployment) -> list[str]:
    """VPC functions need ENI permissions and reach S3 through a gateway endpoint, no NAT."""
    violations = [
        _v(r, "NAT and internet gateways are not part of this design")
        for t in ("aws:ec2/natGateway:NatGateway", "aws:ec2/internetGateway:InternetGateway")
        for r in d.of_type(t)
    ]
    gateway_regions = {
        e.provider_region
        for e in d.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
        if e["vpc_endpoint_type"] == "Gateway" and e["service_name"].endswith(".s3")
    }
    policies = {p["role"]: p.policy_document() for p in d.of_type(ROLE_POLICY)}
    roles = {r.outputs.get("arn"): r for r in d.of_type(ROLE)}
    for function in d.of_type(FUNCTION):
        vpc = function["vpc_config"] or {}
        if len(vpc.get("subnet_ids") or []) < 2 or not vpc.get("security_group_ids"):
            violations.append(_v(function, "must run in the VPC, in at least 2 subnets"))
        if function.provider_region not in gateway_regions:
            violations.append(_v(function, "its region has no S3 gateway endpoint"))
        role = roles.get(function["role"])
        actions = _allowed_actions(policies.get(role.outputs.get("name") if role else None, {}))
        if "ec2:CreateNetworkInterface" not in actions:
            violations.append(_v(function, "its role cannot create network interfaces"))
    return violations


def permissions_name_their_source(d: Deployment) -> list[str]:
    """A Lambda permission for a service names the source ARN (and account, for S3)."""
    violations = []
    for permission in d.of_type(PERMISSION):
        if not permission["source_arn"]:
            violations.append(_v(permission, f"{permission['principal']} may invoke from anywhere"))
        if permission["principal"] == "s3.amazonaws.com" and not permission["source_account"]:
            violations.append(_v(permission, "an S3 permission needs source_account"))
    return violations


def notifications_after_permissions(d: Deployment) -> list[str]:
    """S3 validates a notification's Lambda destination: the permission must exist first."""
    s3_permissions = {p.urn for p in d.of_type(PERMISSION) if p["principal"] == "s3.amazonaws.com"}
    violations = []
    for notification in d.of_type("aws:s3/bucketNotification:BucketNotification"):
        if not s3_permissions & set(notification.dependencies):
            violations.append(_v(notification, "does not depend on the S3 invoke permission"))
    return violations


def static_sites_through_oac(d: Deployment) -> list[str]:
    """OAC: the bucket admits cloudfront.amazonaws.com for its own distribution only."""
    distributions = {dist.outputs["arn"]: dist for dist in d.of_type(DISTRIBUTION)}
    violations = []
    for policy in d.of_type("aws:s3/bucketPolicy:BucketPolicy"):
        for statement in policy.policy_document()["Statement"]:
            principal = statement.get("Principal", {})
            source = statement.get("Condition", {}).get("StringEquals", {}).get("AWS:SourceArn")
            if principal != {"Service": "cloudfront.amazonaws.com"} or source not in distributions:
                violations.append(_v(policy, f"statement {statement.get('Sid')} is not OAC-scoped"))
    for dist in distributions.values():
        for origin in dist["origins"]:
            if ".s3." in origin["domain_name"] and not origin.get("origin_access_control_id"):
                violations.append(_v(dist, f"S3 origin {origin['origin_id']} without OAC"))
    return violations


def cloudflare_latency_steering(d: Deployment) -> list[str]:
    """Dynamic latency steering needs monitors on every pool and a fallback pool."""
    violations = []
    pools = {p.name: p for p in d.of_type("cloudflare:index/loadBalancerPool:LoadBalancerPool")}
    balancers = d.of_type("cloudflare:index/loadBalancer:LoadBalancer")
    if len(balancers) != 1:
        violations.append(f"{d.stack}: {len(balancers)} load balancers, want 1")
    for pool in pools.values():
        if not pool["monitor"]:
            violations.append(_v(pool, "has no health monitor"))
        for origin in pool["origins"]:
            if (origin.get("header") or {}).get("hosts") != [origin["address"]]:
                violations.append(
                    _v(pool, "origin Host header must be the distribution's own hostname")
                )
    for balancer in balancers:
        if balancer["steering_policy"] != "dynamic_latency" or not balancer["proxied"]:
            violations.append(_v(balancer, "must be proxied with dynamic_latency steering"))
        if (
            not balancer["fallback_pool"]
            or balancer["fallback_pool"] not in balancer["default_pools"]
        ):
            violations.append(_v(balancer, "needs a fallback pool among its pools"))
    return violations


def github_oidc_subjects_pinned(d: Deployment) -> list[str]:
    """Roles GitHub may assume pin aud and sub to this repository's environment for this stack."""
    violations = []
    for provider in d.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider"):
        if provider["client_id_lists"] != [GITHUB_AUDIENCE]:
            violations.append(_v(provider, f"audience must be only {GITHUB_AUDIENCE}"))
    repository = d.program["config"].github_repository
    allowed = {
        github_subject(repository, d.stack): "deploy or publish",
        github_subject(repository, preview_environment(d.stack)): "read-only preview",
    }
    attached: dict[str, set[str]] = {}
    for attachment in d.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"):
        attached.setdefault(attachment["role"], set()).add(attachment["policy_arn"])
    inline = {policy["role"] for policy in d.of_type(ROLE_POLICY)}
    for role in d.of_type(ROLE):
        for statement in role.policy_document("assume_role_policy")["Statement"]:
            if "Federated" not in statement.get("Principal", {}):
                continue
            conditions = statement.get("Condition", {})
            equals = conditions.get("StringEquals", {})
            if set(conditions) != {"StringEquals"}:
                violations.append(_v(role, f"only StringEquals may constrain tokens: {conditions}"))
            if equals.get(f"{GITHUB_OIDC_HOST}:aud") != GITHUB_AUDIENCE:
                violations.append(_v(role, "does not pin the token audience"))
            subject = equals.get(f"{GITHUB_OIDC_HOST}:sub")
            if subject not in allowed:
                violations.append(_v(role, f"subject {subject!r} is not one of {sorted(allowed)}"))
            elif allowed[subject] == "read-only preview" and (
                attached.get(role["name"]) != {READ_ONLY_POLICY} or role["name"] in inline
            ):
                violations.append(_v(role, "pull-request previews may only read"))
    return violations


# -- the review's checks (Checkov's AWS rules, as policies) -------------------------


def cache_encrypted_and_authenticated(d: Deployment) -> list[str]:
    """CKV_AWS_29/30/31: at-rest and in-transit encryption, an AUTH token; Multi-AZ failover."""
    violations = []
    primary = [g for g in d.of_type(REPLICATION_GROUP) if not g["global_replication_group_id"]]
    for group in primary:
        if not group["at_rest_encryption_enabled"]:
            violations.append(
                _v(group, "at-rest encryption is off (and cannot be turned on later)")
            )
        if (
            not group["transit_encryption_enabled"]
            or group["transit_encryption_mode"] != "required"
        ):
            violations.append(_v(group, "in-transit encryption must be required"))
    for group in d.of_type(REPLICATION_GROUP):
        if not group["auth_token"]:
            violations.append(_v(group, "has no AUTH token"))
        if not (group["multi_az_enabled"] and group["automatic_failover_enabled"]):
            violations.append(_v(group, "needs Multi-AZ with automatic failover"))
    return violations


def cloudfront_https_tls_waf(d: Deployment) -> list[str]:
    """CKV_AWS_34/174/68/86: HTTPS only, TLS 1.2+, WAF, HTTPS to origins."""
    violations = []
    for dist in d.of_type(DISTRIBUTION):
        behaviors = [dist["default_cache_behavior"], *(dist["ordered_cache_behaviors"] or [])]
        for behavior in behaviors:
            if behavior["viewer_protocol_policy"] not in ("redirect-to-https", "https-only"):
                violations.append(
                    _v(dist, f"behavior {behavior.get('path_pattern', '*')} allows HTTP")
                )
        certificate = dist["viewer_certificate"] or {}
        if certificate.get("cloudfront_default_certificate") or not str(
            certificate.get("minimum_protocol_version", "")
        ).startswith("TLSv1.2"):
            violations.append(_v(dist, "must require TLS 1.2 or newer"))
        if not dist["web_acl_id"]:
            violations.append(_v(dist, "has no WAF"))
        for origin in dist["origins"]:
            custom = origin.get("custom_origin_config")
            if custom and (
                custom["origin_protocol_policy"] != "https-only"
                or custom["origin_ssl_protocols"] != ["TLSv1.2"]
            ):
                violations.append(
                    _v(dist, f"origin {origin['origin_id']} must be HTTPS with TLS 1.2")
                )
    return violations


def buckets_private_encrypted_versioned(d: Deployment) -> list[str]:
    """CKV_AWS_53-56/19/21: public access blocked, encrypted, versioned."""
    violations = []
    by_bucket = lambda type_: {r["bucket"]: r for r in d.of_type(type_)}  # noqa: E731
    blocks = by_bucket("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    encryption = by_bucket(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    versioning = by_bucket("aws:s3/bucketVersioning:BucketVersioning")
    for bucket in d.of_type(BUCKET):
        name = bucket.outputs["bucket"]
        block = blocks.get(name)
        flags = (
            "block_public_acls",
            "block_public_policy",
            "ignore_public_acls",
            "restrict_public_buckets",
        )
        if not block or not all(block[flag] for flag in flags):
            violations.append(_v(bucket, "public access is not fully blocked"))
        if name not in encryption:
            violations.append(_v(bucket, "is not encrypted at rest"))
        version = versioning.get(name)
        if not version or (version["versioning_configuration"] or {}).get("status") != "Enabled":
            violations.append(_v(bucket, "is not versioned"))
    return violations


def functions_hold_no_secrets(d: Deployment) -> list[str]:
    """CKV_AWS_45/116/50: no secrets in environment variables; traced; logs retained."""
    violations = []
    log_groups = {g["name"]: g for g in d.of_type("aws:cloudwatch/logGroup:LogGroup")}
    for function in d.of_type(FUNCTION):
        for name, value in _env(function).items():
            if SECRET_NAME.search(name):
                violations.append(_v(function, f"environment variable {name} looks like a secret"))
            if re.match(r"rediss?://[^/]*@", str(value)):
                violations.append(_v(function, f"{name} carries credentials"))
        if (function["tracing_config"] or {}).get("mode") != "Active":
            violations.append(_v(function, "X-Ray tracing is not active"))
        group = log_groups.get(f"/aws/lambda/{function['name']}")
        if not group or not group["retention_in_days"]:
            violations.append(_v(function, "its log group has no retention"))
    return violations


def api_access_logged_and_throttled(d: Deployment) -> list[str]:
    """CKV_AWS_76/95: every HTTP API stage logs access and is throttled."""
    violations = []
    for stage in d.of_type("aws:apigatewayv2/stage:Stage"):
        logs = stage["access_log_settings"] or {}
        if not logs.get("destination_arn") or not logs.get("format"):
            violations.append(_v(stage, "has no access logs"))
        route = stage["default_route_settings"] or {}
        if not route.get("throttling_burst_limit") or not route.get("throttling_rate_limit"):
            violations.append(_v(stage, "is not throttled"))
    return violations


def _statements(document: dict) -> list[dict]:
    return _as_list(document.get("Statement", []))


def _allowed_actions(document: dict) -> set[str]:
    return {
        a
        for s in _statements(document)
        if s.get("Effect") == "Allow"
        for a in _as_list(s.get("Action", []))
    }


def iam_least_privilege(d: Deployment) -> list[str]:
    """CKV_AWS_1/49/62/63/107-111/286-289: no * actions, * resources only where AWS
    requires, no managed admin policies, no unguarded privilege escalation."""
    violations = []
    for policy in d.of_type(ROLE_POLICY):
        for statement in _statements(policy.policy_document()):
            if statement.get("Effect") != "Allow":
                continue
            actions = set(_as_list(statement.get("Action", [])))
            resources = _as_list(statement.get("Resource", []))
            for action in actions:
                if action == "*" or action.endswith(":*"):
                    violations.append(_v(policy, f"wildcard action {action}"))
            if "*" in resources and not actions <= RESOURCELESS_ACTIONS:
                violations.append(
                    _v(policy, f"Resource * for {sorted(actions - RESOURCELESS_ACTIONS)}")
                )
            own_roles = f"arn:aws:iam::{d.account_id}:role/golinks-{d.stack}-"
            escalating = actions & ESCALATION_ACTIONS
            if escalating and not all(str(r).startswith(own_roles) for r in resources):
                violations.append(
                    _v(policy, f"{sorted(escalating)} on {resources} escalates privileges")
                )
            passed_to = (
                statement.get("Condition", {}).get("StringEquals", {}).get("iam:PassedToService")
            )
            if "iam:PassRole" in actions and not passed_to:
                violations.append(
                    _v(policy, "iam:PassRole is not limited to the services using it")
                )
    for attachment in d.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"):
        if attachment["policy_arn"] in FORBIDDEN_MANAGED_POLICIES:
            violations.append(_v(attachment, f"attaches {attachment['policy_arn']}"))
    violations.extend(_roles_that_can_rewrite_themselves(d))
    return violations


def _roles_that_can_rewrite_themselves(d: Deployment) -> list[str]:
    violations = []
    for policy in d.of_type(ROLE_POLICY):
        role_arn = f"arn:aws:iam::{d.account_id}:role/{policy['role']}"
        document = policy.policy_document()
        denied = {
            a
            for s in _statements(document)
            if s.get("Effect") == "Deny" and role_arn in _as_list(s.get("Resource"))
            for a in _as_list(s.get("Action"))
        }
        for statement in _statements(document):
            if statement.get("Effect") != "Allow":
                continue
            actions = set(_as_list(statement.get("Action", [])))
            risky = actions & ESCALATION_ACTIONS - {"iam:PassRole", "iam:CreateRole"}
            if not risky:
                continue
            for pattern in _as_list(statement.get("Resource", [])):
                if (
                    re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), role_arn)
                    and not risky <= denied
                ):
                    violations.append(
                        _v(policy, f"role {policy['role']} may rewrite its own permissions")
                    )
    return violations


CLOUD_CONSTRAINTS = [
    one_distribution_per_alias,
    api_only_through_cloudfront,
    edge_resources_in_us_east_1,
    global_datastore_membership,
    only_the_primary_region_writes,
    functions_in_vpc_with_endpoints,
    permissions_name_their_source,
    notifications_after_permissions,
    static_sites_through_oac,
    cloudflare_latency_steering,
    github_oidc_subjects_pinned,
]
REVIEW_CHECKS = [
    cache_encrypted_and_authenticated,
    cloudfront_https_tls_waf,
    buckets_private_encrypted_versioned,
    functions_hold_no_secrets,
    api_access_logged_and_throttled,
    iam_least_privilege,
]
ALL_POLICIES = CLOUD_CONSTRAINTS + REVIEW_CHECKS


def report(d: Deployment) -> dict[str, list[str]]:
    return {policy.__name__: found for policy in ALL_POLICIES if (found := policy(d))}
