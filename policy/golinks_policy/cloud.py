"""What AWS or Cloudflare would reject at `pulumi up` (DESIGN.md section 7), as policies.

Each validator returns its violations, each naming the resource's URN.
"""

from __future__ import annotations

from . import store
from .model import Resource, Stack, violation
from .types import (
    DISTRIBUTION,
    FUNCTION,
    GLOBAL_GROUP,
    PERMISSION,
    REPLICATION_GROUP,
    ROLE,
    allowed_actions,
    edge_functions,
    environment_of,
    inline_documents,
    purpose_of,
)

#: CloudFront's WAF web ACLs and ACM certificates exist only here.
EDGE_REGION = "us-east-1"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_AUDIENCE = "sts.amazonaws.com"


def github_subject(repository: str, environment: str) -> str:
    """The `sub` claim GitHub sends for a job bound to an environment."""
    return f"repo:{repository}:environment:{environment}"


def preview_environment(stack: str) -> str:
    return f"{stack}-preview"


def one_distribution_per_alias(d: Stack) -> list[str]:
    """A hostname can be an alias of only one CloudFront distribution (CNAMEAlreadyExists)."""
    public = d.facts.public_hostname
    # Behind Cloudflare the public hostname is no alias (Cloudflare sends each region's
    # own); with Route 53 it is the alias of the one distribution every viewer reaches.
    public_is_alias = d.facts.traffic_router == "route53"
    seen: dict[str, Resource] = {}
    violations = []
    for dist in d.of_type(DISTRIBUTION):
        for alias in dist["aliases"] or []:
            if alias in seen:
                violations.append(violation(dist, f"alias {alias} is already on {seen[alias].urn}"))
            if alias == public and not public_is_alias:
                violations.append(violation(dist, f"the public hostname {alias} must be no alias"))
            seen[alias] = dist
    if public_is_alias and public not in seen:
        violations.append(f"{d.stack}: no distribution has the public hostname {public} as alias")
    return violations


def api_only_through_cloudfront(d: Stack) -> list[str]:
    """HTTP APIs take no WAF: it sits on CloudFront; the origin-verify header guards the API."""
    violations = [
        violation(r, "a WAF association on an API Gateway HTTP API is not possible")
        for r in d.of_type("aws:wafv2/webAclAssociation:WebAclAssociation")
    ]
    acls = {r["arn"] for r in d.of_type("aws:wafv2/webAcl:WebAcl")}
    for dist in d.of_type(DISTRIBUTION):
        if dist["web_acl_id"] not in acls:
            violations.append(violation(dist, "has no WAF web ACL"))
        for origin in dist["origins"]:
            if "custom_origin_config" in origin:
                headers = {h["name"]: h["value"] for h in origin.get("custom_headers") or []}
                if not headers.get("x-origin-verify"):
                    violations.append(
                        violation(dist, f"origin {origin['origin_id']} lacks x-origin-verify")
                    )
    for function in d.of_type(FUNCTION):
        if purpose_of(function) == "redirect" and "SERVICE_SECRET_ARN" not in environment_of(
            function
        ):
            violations.append(
                violation(function, "cannot check x-origin-verify without the service secret")
            )
    return violations


def edge_resources_in_us_east_1(d: Stack) -> list[str]:
    """CLOUDFRONT-scope web ACLs and CloudFront's ACM certificates exist only in us-east-1."""
    violations = []
    for acl in d.of_type("aws:wafv2/webAcl:WebAcl"):
        if acl["scope"] != "CLOUDFRONT" or acl.region != EDGE_REGION:
            violations.append(violation(acl, f"scope {acl['scope']} in {acl.region}"))
    certificates = {c["arn"]: c for c in d.of_type("aws:acm/certificate:Certificate")}
    for dist in d.of_type(DISTRIBUTION):
        arn = (dist["viewer_certificate"] or {}).get("acm_certificate_arn")
        certificate = certificates.get(arn)
        if certificate is None or certificate.region != EDGE_REGION:
            violations.append(
                violation(dist, f"certificate {arn} is not a us-east-1 ACM certificate")
            )
    return violations


def global_datastore_membership(d: Stack) -> list[str]:
    """At most 2 secondaries; one node type, engine and version; no t-class; in a VPC."""
    violations = []
    groups = d.of_type(REPLICATION_GROUP)
    primaries = [g for g in groups if not g["global_replication_group_id"]]
    secondaries = [g for g in groups if g["global_replication_group_id"]]
    if len(primaries) != 1:
        violations.append(f"{d.stack}: {len(primaries)} primary replication groups, want 1")
    if len(secondaries) > 2:
        violations.extend(
            violation(g, "a Global Datastore takes at most 2 secondaries") for g in secondaries[2:]
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
                        violation(primary, f"{key} {primary[key]} differs from the datastore's")
                    )
    for group in groups:
        if str(group["node_type"] or "").startswith("cache.t"):
            violations.append(violation(group, f"burstable node type {group['node_type']}"))
        if not group["subnet_group_name"]:
            violations.append(violation(group, "is not in a VPC subnet group"))
    for group in secondaries:
        for key in ("engine", "engine_version", "node_type"):
            if group[key] is not None and any(group[key] != p[key] for p in primaries):
                violations.append(
                    violation(group, f"overrides {key}; members must match the primary")
                )
    return violations


def only_the_primary_region_writes(d: Stack) -> list[str]:
    """Secondary members are read-only: the writer (sync) exists only in the primary region
    (with DynamoDB, where any replica takes writes, IAM lets only that sync write)."""
    if d.facts.link_store == "dynamodb":
        return store.only_the_primary_region_writes_the_table(d)
    primary = d.facts.primary_region
    writers = [
        g["primary_endpoint_address"] for g in d.of_type(REPLICATION_GROUP) if g.region == primary
    ]
    if not writers:
        return [f"{d.stack}: no Datastore member in the primary region {primary} to write to"]
    writer = writers[0]
    violations = []
    for function in d.of_type(FUNCTION):
        url = environment_of(function).get("REDIS_URL", "")
        writes = writer in url
        if purpose_of(function) == "sync":
            if function.region != primary or not writes:
                violations.append(
                    violation(function, f"sync must write to the primary in {primary}")
                )
        elif writes:
            violations.append(
                violation(function, "a reading function points at the writer endpoint")
            )
    return violations


def functions_in_vpc_with_endpoints(d: Stack) -> list[str]:
    """VPC functions need ENI permissions and reach S3 through a gateway endpoint, no NAT;
    with DynamoDB the sync runs outside (it reads back every region's replica)."""
    violations = [
        violation(r, "NAT and internet gateways are not part of this design")
        for t in ("aws:ec2/natGateway:NatGateway", "aws:ec2/internetGateway:InternetGateway")
        for r in d.of_type(t)
    ]
    gateway_regions = {
        e.region
        for e in d.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
        if e["vpc_endpoint_type"] == "Gateway" and e["service_name"].endswith(".s3")
    }
    policies = inline_documents(d)
    roles = {r["arn"]: r for r in d.of_type(ROLE)}
    at_edge = {f.urn for f in edge_functions(d)}  # Lambda@Edge has no VPC
    for function in d.of_type(FUNCTION):
        if function.urn in at_edge:
            continue
        vpc = function["vpc_config"] or {}
        if d.facts.link_store == "dynamodb" and purpose_of(function) == "sync":
            # It reads back every region's replica: from a VPC without NAT it reaches
            # only its own region's DynamoDB (the gateway endpoint).
            if vpc.get("subnet_ids"):
                violations.append(
                    violation(function, "in a VPC it cannot reach the other regions' replicas")
                )
            continue
        if len(vpc.get("subnet_ids") or []) < 2 or not vpc.get("security_group_ids"):
            violations.append(violation(function, "must run in the VPC, in at least 2 subnets"))
        if function.region not in gateway_regions:
            violations.append(violation(function, "its region has no S3 gateway endpoint"))
        role = roles.get(function["role"])
        actions = allowed_actions(policies.get(role["name"] if role else None, {}))
        if "ec2:CreateNetworkInterface" not in actions:
            violations.append(violation(function, "its role cannot create network interfaces"))
    return violations


def permissions_name_their_source(d: Stack) -> list[str]:
    """A Lambda permission for a service names the source ARN (and account, for S3)."""
    violations = []
    for permission in d.of_type(PERMISSION):
        if not permission["source_arn"]:
            violations.append(
                violation(permission, f"{permission['principal']} may invoke from anywhere")
            )
        if permission["principal"] == "s3.amazonaws.com" and not permission["source_account"]:
            violations.append(violation(permission, "an S3 permission needs source_account"))
    return violations


def notifications_after_permissions(d: Stack) -> list[str]:
    """S3 validates a notification's Lambda destination: the permission must exist first."""
    s3_permissions = {p.urn for p in d.of_type(PERMISSION) if p["principal"] == "s3.amazonaws.com"}
    violations = []
    for notification in d.of_type("aws:s3/bucketNotification:BucketNotification"):
        if not s3_permissions & set(notification.dependencies):
            violations.append(
                violation(notification, "does not depend on the S3 invoke permission")
            )
    return violations


def static_sites_through_oac(d: Stack) -> list[str]:
    """OAC: the bucket admits cloudfront.amazonaws.com for its own distribution only."""
    distributions = {dist["arn"]: dist for dist in d.of_type(DISTRIBUTION)}
    violations = []
    for policy in d.of_type("aws:s3/bucketPolicy:BucketPolicy"):
        for statement in policy.policy_document()["Statement"]:
            principal = statement.get("Principal", {})
            source = statement.get("Condition", {}).get("StringEquals", {}).get("AWS:SourceArn")
            if principal != {"Service": "cloudfront.amazonaws.com"} or source not in distributions:
                violations.append(
                    violation(policy, f"statement {statement.get('Sid')} is not OAC-scoped")
                )
    for dist in distributions.values():
        for origin in dist["origins"]:
            if ".s3." in origin["domain_name"] and not origin.get("origin_access_control_id"):
                violations.append(violation(dist, f"S3 origin {origin['origin_id']} without OAC"))
    return violations


def cloudflare_latency_steering(d: Stack) -> list[str]:
    """Dynamic latency steering needs monitors on every pool and a fallback pool."""
    if d.facts.traffic_router != "cloudflare":
        return []
    violations = []
    pools = {p.name: p for p in d.of_type("cloudflare:index/loadBalancerPool:LoadBalancerPool")}
    balancers = d.of_type("cloudflare:index/loadBalancer:LoadBalancer")
    if len(balancers) != 1:
        violations.append(f"{d.stack}: {len(balancers)} load balancers, want 1")
    for pool in pools.values():
        if not pool["monitor"]:
            violations.append(violation(pool, "has no health monitor"))
        for origin in pool["origins"]:
            if (origin.get("header") or {}).get("hosts") != [origin["address"]]:
                violations.append(
                    violation(pool, "origin Host header must be the distribution's own hostname")
                )
    for balancer in balancers:
        if balancer["steering_policy"] != "dynamic_latency" or not balancer["proxied"]:
            violations.append(violation(balancer, "must be proxied with dynamic_latency steering"))
        if (
            not balancer["fallback_pool"]
            or balancer["fallback_pool"] not in balancer["default_pools"]
        ):
            violations.append(violation(balancer, "needs a fallback pool among its pools"))
    return violations


def github_oidc_subjects_pinned(d: Stack) -> list[str]:
    """Roles GitHub may assume pin aud and sub to this repository's environment for this stack."""
    violations = []
    for provider in d.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider"):
        if provider["client_id_lists"] != [GITHUB_AUDIENCE]:
            violations.append(violation(provider, f"audience must be only {GITHUB_AUDIENCE}"))
    repository = d.facts.github_repository
    allowed = {
        github_subject(repository, d.stack): "deploy or publish",
        github_subject(repository, preview_environment(d.stack)): "read-only preview",
    }
    attached: dict[str, set[str]] = {}
    for attachment in d.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"):
        attached.setdefault(attachment["role"], set()).add(attachment["policy_arn"])
    for role in d.of_type(ROLE):
        for statement in role.policy_document("assume_role_policy")["Statement"]:
            if "Federated" not in statement.get("Principal", {}):
                continue
            conditions = statement.get("Condition", {})
            equals = conditions.get("StringEquals", {})
            if set(conditions) != {"StringEquals"}:
                violations.append(
                    violation(role, f"only StringEquals may constrain tokens: {conditions}")
                )
            if equals.get(f"{GITHUB_OIDC_HOST}:aud") != GITHUB_AUDIENCE:
                violations.append(violation(role, "does not pin the token audience"))
            subject = equals.get(f"{GITHUB_OIDC_HOST}:sub")
            if subject not in allowed:
                violations.append(
                    violation(role, f"subject {subject!r} is not one of {sorted(allowed)}")
                )
            elif allowed[subject] == "read-only preview" and (
                attached.get(role["name"]) or role["name"] != f"golinks-{d.stack}-preview"
            ):
                # Its own inline policy is held to reading configuration only
                # (preview_role_reads_only_configuration); a managed one cannot be.
                violations.append(violation(role, "pull-request previews may only read"))
    return violations
