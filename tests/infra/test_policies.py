"""Every policy holds for every stack, and each one catches a deliberately broken variant."""

from __future__ import annotations

import dataclasses

import pytest
from golinks_policy import lifecycle
from golinks_policy.model import as_list

from . import policies
from .conftest import STACKS
from .harness import Deployment, Resource

FUNCTION = policies.FUNCTION
SECRET = "aws:secretsmanager/secret:Secret"
REPLICATION_CONFIG = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"


#: Every stack as its stack file says, with trafficRouter route53, with linkStore dynamodb.
VARIANTS = ("deployments", "route53_deployments", "dynamodb_deployments")


@pytest.mark.parametrize("policy", policies.ALL_POLICIES, ids=lambda p: p.__name__)
@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_the_stack_satisfies_the_policy(request, variant, stack, policy):
    policies.assert_satisfied(policy, request.getfixturevalue(variant)[stack])


def first(d: Deployment, type_: str, where=lambda r: True) -> Resource:
    return next(r for r in d.of_type(type_) if where(r))


def function(d: Deployment, purpose: str, region: str | None = None) -> Resource:
    return first(
        d,
        FUNCTION,
        lambda f: (
            f["name"].endswith(f"-{purpose}") and (region is None or f.provider_region == region)
        ),
    )


def added(d: Deployment, type_: str, **inputs) -> None:
    urn = f"urn:pulumi:{d.stack}::golinks::{type_}::added"
    d.resources.append(
        Resource(
            urn=urn,
            id="added",
            type=type_,
            name="added",
            inputs=inputs,
            outputs={},
            parent="",
            provider_region="eu-west-1",
            dependencies=[],
            custom=True,
        )
    )


def _preview_takes(d, policy_arn: str) -> None:
    added(
        d,
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        role=f"golinks-{d.stack}-preview",
        policy_arn=policy_arn,
    )


def _preview_policy(d) -> Resource:
    return first(d, policies.ROLE_POLICY, lambda p: p["role"].endswith("-preview"))


def _api_origin(d):
    dist = first(d, policies.DISTRIBUTION)
    return next(o for o in dist["origins"] if o["origin_id"] == "api")


def _second_alias(d):
    one, two = d.of_type(policies.DISTRIBUTION)[:2]
    two.inputs["aliases"] = list(one["aliases"])


def _secondary(d):
    return first(d, policies.REPLICATION_GROUP, lambda g: g["global_replication_group_id"])


def _copies(resource: Resource, count: int) -> list[Resource]:
    return [
        dataclasses.replace(resource, urn=f"{resource.urn}-{i}", name=f"{resource.name}-{i}")
        for i in range(count)
    ]


def _founder(d):
    return first(d, policies.REPLICATION_GROUP, lambda g: not g["global_replication_group_id"])


def _index_bucket(d):
    return first(d, policies.BUCKET, lambda b: "-index-" in b["bucket"])


def _declared_disposable(d):
    d.program = {**d.program, "config": dataclasses.replace(d.program["config"], disposable=True)}


def _torn_down(d, then):
    """prod declared disposable and made so (unprotected, emptied, no recovery), then `then`."""
    _declared_disposable(d)
    for resource in d.resources:
        resource.protect = False
        if resource.type == policies.BUCKET:
            resource.inputs["force_destroy"] = True
        if resource.type == SECRET:
            resource.inputs["recovery_window_in_days"] = 0
    then()


def _sts_in_its_own_region(d):
    provider = first(d, "pulumi:providers:aws", lambda p: p["region"] == "us-west-2")
    provider.inputs.pop("sts_region")
    provider.outputs.pop("sts_region")


def _role(d, suffix: str) -> Resource:
    return first(d, policies.ROLE, lambda r: r["name"].endswith(suffix))


def _boundary(d) -> Resource:
    return first(d, "aws:iam/policy:Policy", lambda p: p["name"].endswith("-role-boundary"))


def _deploy_may(d, sid: str, *actions: str) -> None:
    """The deploy policy allows `actions` in statement `sid`, and no longer denies them."""
    _statement(_deploy_policy(d), index=sid)["Action"].extend(actions)
    for statement in _deploy_policy(d).inputs["policy"]["Statement"]:
        if statement["Effect"] == "Deny":
            statement["Action"] = [a for a in as_list(statement["Action"]) if a not in actions]


def _drop_statement(resource: Resource, sid: str) -> None:
    statement = _statement(resource, index=sid)
    resource.inputs["policy"]["Statement"].remove(statement)


def _deploy_policy(d):
    return first(d, policies.ROLE_POLICY, lambda p: p["role"].endswith("-deploy"))


def _statement(resource: Resource, key="policy", index: int | str = 0) -> dict:
    """Statement `index` (a position, or a Sid) of a policy, to break in place."""
    document = resource.policy_document(key)
    statements = document["Statement"]
    mutate = (
        next(s for s in statements if s.get("Sid") == index)
        if isinstance(index, str)
        else statements[index]
    )
    resource.inputs[key] = document  # policy_document reads dicts as they are
    return mutate


def _acl_rules(d) -> list[dict]:
    return first(d, policies.WEB_ACL)["rules"]


def _rule(d, name: str) -> dict:
    return next(r for r in _acl_rules(d) if r["name"] == name)


def _gate_checks(d) -> list[dict]:
    return _rule(d, "only-through-cloudflare")["statement"]["not_statement"]["statement"][
        "and_statement"
    ]["statements"]


def _drop(d, type_: str, where=lambda r: True) -> None:
    d.resources.remove(first(d, type_, where))


def _alarm(d, suffix: str, region: str | None = None) -> Resource:
    return first(
        d,
        policies.ALARM,
        lambda a: (
            (a["name"] or "").endswith(suffix) and (region is None or a.provider_region == region)
        ),
    )


def _edge_secret_rule(d) -> dict:
    return first(d, policies.RULESET)["rules"][0]["action_parameters"]["headers"]["x-golinks-edge"]


LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
ZONE_SETTING = "cloudflare:index/zoneSetting:ZoneSetting"
WAF_LOGGING = "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration"
REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"


def _redirect_at_the_edge(d):
    """A regional function (arm64, in a VPC, with environment) wired in as Lambda@Edge."""
    redirect = function(d, "redirect")
    first(d, policies.DISTRIBUTION)["default_cache_behavior"]["lambda_function_associations"] = [
        {"event_type": "origin-request", "lambda_arn": redirect.outputs["arn"] + ":3"}
    ]


BREAKAGES = {
    "edge_admits_only_cloudflare": [
        lambda d: _acl_rules(d).remove(_rule(d, "only-through-cloudflare")),
        lambda d: _gate_checks(d).pop(0),  # the secret alone: a leaked secret opens the door
        lambda d: _gate_checks(d).pop(1),  # the address alone: any Cloudflare Worker gets in
        lambda d: _edge_secret_rule(d).update(value="another-secret"),
        lambda d: first(d, policies.IP_SET, lambda s: s["name"].endswith("-cloudflare-ipv6"))[
            "addresses"
        ].clear(),
        lambda d: first(
            d, "cloudflare:index/loadBalancerMonitor:LoadBalancerMonitor"
        ).inputs.update(header=None),
    ],
    "client_rules_judge_the_forwarded_address": [
        lambda d: _rule(d, "rate-limit-per-client")["statement"]["rate_based_statement"].update(
            aggregate_key_type="IP", forwarded_ip_config=None
        ),
        lambda d: _acl_rules(d).append(
            {
                "name": "reputation",
                "priority": 9,
                "override_action": {"none": {}},
                "statement": {
                    "managed_rule_group_statement": {
                        "vendor_name": "AWS",
                        "name": "AWSManagedRulesAmazonIpReputationList",
                    }
                },
            }
        ),
        lambda d: _rule(d, "blocked-clients")["statement"]["or_statement"]["statements"][0][
            "ip_set_reference_statement"
        ].pop("ip_set_forwarded_ip_config"),
    ],
    "cloudflare_zone_full_strict": [
        lambda d: first(d, ZONE_SETTING, lambda z: z["setting_id"] == "ssl").inputs.update(
            value="flexible"
        ),
        lambda d: _drop(d, ZONE_SETTING, lambda z: z["setting_id"] == "min_tls_version"),
    ],
    "waf_blocks_are_logged": [
        lambda d: _drop(d, WAF_LOGGING),
        lambda d: first(
            d, "aws:cloudwatch/logGroup:LogGroup", lambda g: g["name"].startswith("aws-waf-logs-")
        ).inputs.update(name="waf-logs"),
        lambda d: first(
            d, "aws:cloudwatch/logGroup:LogGroup", lambda g: g["name"].startswith("aws-waf-logs-")
        ).inputs.update(retention_in_days=None),
        lambda d: first(d, WAF_LOGGING).inputs.update(redacted_fields=[]),
    ],
    "s3_events_are_never_lost": [
        lambda d: _drop(d, "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"),
        lambda d: first(d, policies.QUEUE).inputs.update(sqs_managed_sse_enabled=False),
        lambda d: _drop(d, policies.ALARM, lambda a: a["name"].endswith("-sync-failures-queued")),
        lambda d: _drop(d, policies.ALARM, lambda a: a["name"].endswith("-sync-errors")),
        lambda d: _statement(
            first(d, policies.ROLE_POLICY, lambda p: p["role"].endswith("-sync")), index=5
        ).update(Resource="arn:aws:sqs:eu-west-1:111111111111:elsewhere"),
    ],
    "health_and_sync_keep_concurrency": [
        lambda d: function(d, "health", "us-west-2").inputs.update(
            reserved_concurrent_executions=None
        ),
        lambda d: function(d, "sync").inputs.update(reserved_concurrent_executions=0),
    ],
    "versioned_buckets_expire_replaced_versions": [
        lambda d: _drop(d, LIFECYCLE),
        lambda d: first(d, LIFECYCLE)["rules"][0].update(status="Disabled"),
        lambda d: first(d, LIFECYCLE)["rules"][0].update(filter={"prefix": "index/"}),
    ],
    "replication_lag_is_watched_per_node": [
        lambda d: _alarm(d, "-replication-lag")["metric_queries"][0]["metric"].update(
            dimensions={"ReplicationGroupId": "golinks-prod-usw2"}
        ),
        lambda d: _alarm(d, "-replication-lag")["metric_queries"].pop(1),
    ],
    "functions_use_their_regions_extension_layer": [
        lambda d: function(d, "redirect", "us-west-2").inputs.update(
            layers=function(d, "redirect", "eu-west-1")["layers"]
        ),
        lambda d: function(d, "health").inputs.update(
            layers=[function(d, "health")["layers"][0].replace("-Arm64", "")]
        ),
        lambda d: function(d, "sync").inputs.update(layers=function(d, "sync")["layers"] * 2),
    ],
    "replication_trusted_as_documented_and_watched": [
        lambda d: _statement(
            first(d, policies.ROLE, lambda r: r["name"].endswith("-index-replication")),
            "assume_role_policy",
        ).update(Condition={"StringEquals": {"aws:SourceAccount": d.account_id}}),
        lambda d: first(d, REPLICATION)["rules"][0]["destination"].pop("metrics"),
        lambda d: _drop(
            d, policies.ALARM, lambda a: a["metric_name"] == "OperationsFailedReplication"
        ),
    ],
    "every_alarm_notifies": [
        lambda d: _alarm(d, "-api-5xx").inputs.update(alarm_actions=[]),
        lambda d: _alarm(d, "-api-5xx", "us-west-2").inputs.update(
            alarm_actions=_alarm(d, "-api-5xx", "eu-west-1")["alarm_actions"]
        ),
    ],
    "lambda_at_edge_constraints": [_redirect_at_the_edge],
    "one_traffic_router": [
        lambda d: added(d, "aws:route53/record:Record", name="go.example.com", type="A")
    ],
    "one_distribution_per_alias": [
        _second_alias,
        lambda d: (
            first(d, policies.DISTRIBUTION).inputs["aliases"].append(d.program["config"].domain)
        ),
    ],
    "api_only_through_cloudfront": [
        lambda d: _api_origin(d).update(custom_headers=[]),
        lambda d: added(d, "aws:wafv2/webAclAssociation:WebAclAssociation", resource_arn="api"),
        lambda d: first(d, policies.DISTRIBUTION).inputs.update(web_acl_id=None),
        lambda d: function(d, "redirect")["environment"]["variables"].pop("SERVICE_SECRET_ARN"),
    ],
    "edge_resources_in_us_east_1": [
        lambda d: setattr(first(d, "aws:wafv2/webAcl:WebAcl"), "provider_region", "eu-west-1"),
        lambda d: first(d, "aws:wafv2/webAcl:WebAcl").inputs.update(scope="REGIONAL"),
        lambda d: setattr(
            first(d, "aws:acm/certificate:Certificate"), "provider_region", "eu-west-1"
        ),
    ],
    "global_datastore_membership": [
        lambda d: _secondary(d).inputs.update(node_type="cache.t4g.medium"),
        lambda d: first(d, policies.REPLICATION_GROUP).inputs.update(node_type="cache.t4g.medium"),
        lambda d: _secondary(d).inputs.update(engine="redis"),
        lambda d: d.resources.extend(_copies(_secondary(d), 2)),
        lambda d: first(d, policies.GLOBAL_GROUP).inputs.update(engine_version="7.2"),
        lambda d: _secondary(d).inputs.update(subnet_group_name=None),
    ],
    "only_the_primary_region_writes": [
        lambda d: function(d, "redirect", "us-west-2")["environment"]["variables"].update(
            REDIS_URL=function(d, "sync")["environment"]["variables"]["REDIS_URL"]
        ),
        lambda d: setattr(function(d, "sync"), "provider_region", "us-west-2"),
    ],
    "functions_in_vpc_with_endpoints": [
        lambda d: function(d, "health").inputs.update(vpc_config=None),
        lambda d: added(d, "aws:ec2/natGateway:NatGateway", subnet_id="x"),
        lambda d: d.resources.remove(
            first(
                d, "aws:ec2/vpcEndpoint:VpcEndpoint", lambda e: e["vpc_endpoint_type"] == "Gateway"
            )
        ),
        lambda d: _statement(
            first(d, policies.ROLE_POLICY, lambda p: p["role"].endswith("-redirect")), index=3
        ).update(Action=["ec2:DescribeNetworkInterfaces"]),
    ],
    "permissions_name_their_source": [
        lambda d: first(d, policies.PERMISSION).inputs.update(source_arn=None),
        lambda d: first(
            d, policies.PERMISSION, lambda p: p["principal"] == "s3.amazonaws.com"
        ).inputs.update(source_account=None),
    ],
    "notifications_after_permissions": [
        lambda d: first(d, "aws:s3/bucketNotification:BucketNotification").dependencies.clear(),
    ],
    "static_sites_through_oac": [
        lambda d: _statement(first(d, "aws:s3/bucketPolicy:BucketPolicy")).update(Principal="*"),
        lambda d: _statement(first(d, "aws:s3/bucketPolicy:BucketPolicy")).update(Condition={}),
        lambda d: first(d, policies.DISTRIBUTION)["origins"][0].pop("origin_access_control_id"),
    ],
    "cloudflare_latency_steering": [
        lambda d: first(d, "cloudflare:index/loadBalancer:LoadBalancer").inputs.update(
            steering_policy="off"
        ),
        lambda d: first(d, "cloudflare:index/loadBalancerPool:LoadBalancerPool").inputs.update(
            monitor=None
        ),
        lambda d: first(d, "cloudflare:index/loadBalancer:LoadBalancer").inputs.update(
            fallback_pool=None
        ),
        lambda d: first(d, "cloudflare:index/loadBalancerPool:LoadBalancerPool")["origins"][
            0
        ].update(header=None),
    ],
    "github_oidc_subjects_pinned": [
        lambda d: _statement(
            first(d, policies.ROLE, lambda r: r["name"].endswith("-deploy")), "assume_role_policy"
        )["Condition"].update(
            StringLike={"token.actions.githubusercontent.com:sub": "repo:example/golinks:*"}
        ),
        lambda d: _statement(
            first(d, policies.ROLE, lambda r: r["name"].endswith("-publish")), "assume_role_policy"
        )["Condition"]["StringEquals"].update(
            {"token.actions.githubusercontent.com:sub": "repo:example/golinks:ref:refs/heads/main"}
        ),
        lambda d: _statement(
            first(d, policies.ROLE, lambda r: r["name"].endswith("-deploy")), "assume_role_policy"
        )["Condition"]["StringEquals"].pop("token.actions.githubusercontent.com:aud"),
        lambda d: first(d, "aws:iam/openIdConnectProvider:OpenIdConnectProvider").inputs.update(
            client_id_lists=["sts.amazonaws.com", "any"]
        ),
        lambda d: _preview_takes(d, "arn:aws:iam::aws:policy/PowerUserAccess"),
        # The stack names the repository in one subject form, the trust uses the other.
        lambda d: _statement(
            first(d, policies.ROLE, lambda r: r["name"].endswith("-deploy")), "assume_role_policy"
        )["Condition"]["StringEquals"].update(
            {"token.actions.githubusercontent.com:sub": "repo:example@1/golinks@2:environment:prod"}
        ),
    ],
    "cache_encrypted_and_authenticated": [
        lambda d: first(d, policies.REPLICATION_GROUP).inputs.update(
            at_rest_encryption_enabled=False
        ),
        lambda d: first(d, policies.REPLICATION_GROUP).inputs.update(
            transit_encryption_mode="preferred"
        ),
        lambda d: _secondary(d).inputs.update(auth_token=None),
        lambda d: _secondary(d).inputs.update(multi_az_enabled=False),
    ],
    "cloudfront_https_tls_waf": [
        lambda d: first(d, policies.DISTRIBUTION)["default_cache_behavior"].update(
            viewer_protocol_policy="allow-all"
        ),
        lambda d: first(d, policies.DISTRIBUTION)["viewer_certificate"].update(
            minimum_protocol_version="TLSv1"
        ),
        lambda d: first(d, policies.DISTRIBUTION).inputs.update(
            viewer_certificate={"cloudfront_default_certificate": True}
        ),
        lambda d: _api_origin(d)["custom_origin_config"].update(
            origin_protocol_policy="match-viewer"
        ),
    ],
    "buckets_private_encrypted_versioned": [
        lambda d: first(d, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs.update(
            restrict_public_buckets=False
        ),
        lambda d: d.resources.remove(
            first(
                d,
                "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            )
        ),
        lambda d: first(d, "aws:s3/bucketVersioning:BucketVersioning").inputs.update(
            versioning_configuration={"status": "Suspended"}
        ),
    ],
    "functions_hold_no_secrets": [
        lambda d: function(d, "redirect")["environment"]["variables"].update(
            REDIS_PASSWORD="hunter2"
        ),
        lambda d: function(d, "health")["environment"]["variables"].update(
            REDIS_URL="rediss://default:hunter2@replica.example:6379/0"
        ),
        lambda d: function(d, "sync").inputs.update(tracing_config={"mode": "PassThrough"}),
        lambda d: first(
            d, "aws:cloudwatch/logGroup:LogGroup", lambda g: g["name"].startswith("/aws/lambda/")
        ).inputs.update(retention_in_days=None),
    ],
    "api_access_logged_and_throttled": [
        lambda d: first(d, "aws:apigatewayv2/stage:Stage").inputs.update(access_log_settings=None),
        lambda d: first(d, "aws:apigatewayv2/stage:Stage").inputs.update(default_route_settings={}),
    ],
    "iam_least_privilege": [
        lambda d: _statement(first(d, policies.ROLE_POLICY)).update(Action="s3:*"),
        lambda d: _statement(
            first(d, policies.ROLE_POLICY, lambda p: p["role"].endswith("-publish"))
        ).update(Resource="*"),
        lambda d: _statement(_deploy_policy(d), index="PassOwnRoles").pop("Condition"),
        lambda d: _statement(_deploy_policy(d), index="OwnRoles").update(
            Resource="arn:aws:iam::*:role/*"
        ),
        lambda d: _statement(_deploy_policy(d), index="NeverTheRolesCiAssumes").update(Resource=[]),
        lambda d: first(d, "aws:iam/rolePolicyAttachment:RolePolicyAttachment").inputs.update(
            policy_arn="arn:aws:iam::aws:policy/AdministratorAccess"
        ),
        lambda d: _statement(
            first(d, policies.ROLE_POLICY, lambda p: p["role"].endswith("-sync"))
        ).update(Action="iam:PassRole", Resource="*"),
        lambda d: _statement(_preview_policy(d), index="ReadConfiguration")["Action"].append(
            "s3:GetObject"
        ),
        lambda d: _statement(_preview_policy(d), index="ReadConfiguration")["Action"].append(
            "dynamodb:Get*"
        ),
    ],
    "datastore_survives_refresh_and_resize": [
        lambda d: setattr(first(d, policies.GLOBAL_GROUP), "ignore_changes", ()),
        lambda d: setattr(_founder(d), "ignore_changes", ("engine_version",)),
        lambda d: _secondary(d).inputs.update(node_type="cache.r7g.large"),
    ],
    "lasting_stacks_protect_their_data": [
        lambda d: setattr(first(d, policies.GLOBAL_GROUP), "protect", False),
        lambda d: setattr(_secondary(d), "protect", False),
        lambda d: setattr(first(d, SECRET), "protect", False),
        lambda d: _index_bucket(d).inputs.update(force_destroy=True),
        lambda d: first(d, SECRET).inputs.update(recovery_window_in_days=0),
    ],
    "disposable_stacks_tear_down_cleanly": [
        _declared_disposable,  # prod's protection and recovery windows stay
        lambda d: _torn_down(d, lambda: setattr(_index_bucket(d), "protect", True)),
        lambda d: _torn_down(
            d,
            lambda: first(d, policies.BUCKET, lambda b: "-site-" in b["bucket"]).inputs.update(
                force_destroy=False
            ),
        ),
        lambda d: _torn_down(d, lambda: first(d, SECRET).inputs.update(recovery_window_in_days=7)),
    ],
    "one_link_store": [
        lambda d: added(d, "aws:dynamodb/table:Table", name="golinks-prod-links"),
        lambda d: function(d, "redirect")["environment"]["variables"].update(
            LINK_TABLE="golinks-prod-links"
        ),
        lambda d: function(d, "sync")["environment"]["variables"].update(LINK_STORE="dynamodb"),
    ],
    "failover_needs_only_reachable_regions": [
        lambda d: function(d, "redirect")["environment"]["variables"].update(
            PRIMARY_REGION="eu-west-1"
        ),
        lambda d: setattr(first(d, REPLICATION_CONFIG), "name", "link-index-replication"),
        _sts_in_its_own_region,
    ],
}


def test_prod_torn_down_as_a_disposable_stack_would_be_is_clean(deployments):
    """The disposable variants above each break one thing of an otherwise clean teardown."""
    clean = deployments["prod"].broken(lambda d: _torn_down(d, lambda: None))
    assert policies.check(lifecycle.disposable_stacks_tear_down_cleanly, clean) == []
    assert policies.check(lifecycle.lasting_stacks_protect_their_data, clean) == []


BREAKAGES |= {
    "roles_carry_the_boundary": [
        lambda d: _role(d, "-euw1-redirect").inputs.update(permissions_boundary=None),
        lambda d: _role(d, "-publish").inputs.update(
            permissions_boundary="arn:aws:iam::aws:policy/AdministratorAccess"
        ),
        lambda d: d.resources.remove(_boundary(d)),
    ],
    "roles_stay_within_the_boundary": [
        lambda d: _statement(
            first(d, policies.ROLE_POLICY, lambda p: p["role"].endswith("-sync"))
        ).update(Action=["kms:Decrypt"]),
        lambda d: _statement(_boundary(d), index="OwnSecrets").update(
            Resource="arn:aws:secretsmanager:*:*:x"
        ),
    ],
    "deploy_role_cannot_escalate": [
        lambda d: _statement(_deploy_policy(d), index="OwnRolesOnlyWithTheBoundary").pop(
            "Condition"
        ),
        lambda d: (
            _statement(_deploy_policy(d), index="OwnRolesOnlyWithTheBoundary")["Condition"].update(
                StringLike={"iam:PermissionsBoundary": "*"}
            )
            or _statement(_deploy_policy(d), index="OwnRolesOnlyWithTheBoundary")["Condition"].pop(
                "StringEquals"
            )
        ),
        lambda d: _deploy_may(d, "OwnRoles", "iam:DeleteRolePermissionsBoundary"),
        lambda d: _deploy_may(
            d,
            "ReadTheAdministratorsParts",
            "iam:UpdateOpenIDConnectProviderThumbprint",
            "iam:TagOpenIDConnectProvider",
        ),
        lambda d: _deploy_may(d, "ReadTheAdministratorsParts", "iam:CreatePolicyVersion"),
        lambda d: _statement(_deploy_policy(d), index="NeverTheRolesCiAssumes").update(
            Action=["iam:PassRole"]
        ),
        lambda d: _statement(_boundary(d), index="OwnSecrets").update(Action="iam:*", Resource="*"),
        lambda d: first(
            d,
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            lambda a: a["role"].endswith("-deploy"),
        ).inputs.update(policy_arn="arn:aws:iam::aws:policy/AdministratorAccess"),
    ],
    "preview_role_reads_only_configuration": [
        lambda d: _preview_takes(d, "arn:aws:iam::aws:policy/ReadOnlyAccess"),
        lambda d: _statement(_preview_policy(d), index="ReadConfiguration")["Action"].append(
            "secretsmanager:GetSecretValue"
        ),
        lambda d: _statement(_preview_policy(d), index="ReadThePublishedIndexAndPages").update(
            Resource="arn:aws:s3:::*/*"
        ),
        lambda d: _statement(_preview_policy(d), index="ReadConfiguration")["Action"].remove(
            "ec2:DescribeVpcs"
        ),
        lambda d: _statement(_preview_policy(d), index="ReadOwnBucketsConfiguration").update(
            Resource="arn:aws:s3:::golinks-other-*"
        ),
        lambda d: added(d, "aws:ec2/instance:Instance", instance_type="t3.micro"),
    ],
    "deploy_role_can_deploy_the_stack": [
        # Before: the publisher was an administrator's, so a failover's new publisher policy
        # (the index bucket moves with the primary region) was denied.
        lambda d: _statement(_deploy_policy(d), index="NeverTheRolesCiAssumes")["Resource"].append(
            f"arn:aws:iam::{d.account_id}:role/golinks-{d.stack}-publish"
        ),
        lambda d: _drop_statement(_deploy_policy(d), "PassOwnRoles"),
        lambda d: _drop_statement(_deploy_policy(d), "ReadTheAdministratorsParts"),
        lambda d: _statement(_deploy_policy(d), index="OwnRoles").update(
            Resource="arn:aws:iam::*:role/x"
        ),
    ],
}


@pytest.mark.parametrize(("name", "index"), policies.variants(BREAKAGES))
def test_a_broken_variant_is_caught_and_named(deployments, name, index):
    policies.assert_caught(name, deployments["prod"].broken(BREAKAGES[name][index]))
