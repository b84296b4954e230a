"""The DynamoDB link store (linkStore dynamodb) under the policy pack: every stack holds
every policy, and each store rule catches a deliberately broken variant of prod."""

from __future__ import annotations

import pytest

from . import policies
from .conftest import DYNAMODB, ROUTE53
from .harness import deploy
from .test_policies import (
    BREAKAGES,
    _boundary,
    _declared_disposable,
    _deploy_policy,
    _drop_statement,
    _preview_policy,
    _statement,
    _torn_down,
    added,
    first,
    function,
)
from .test_traffic_router import ROUTE53_BREAKAGES

TABLE = "aws:dynamodb/table:Table"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
OTHER_REGION_TABLE = "arn:aws:dynamodb:eu-west-1:111111111111:table/golinks-prod-links"


def _table(d):
    return first(d, TABLE)


def _replica(d, region: str) -> dict:
    return next(r for r in _table(d)["replicas"] if r["region_name"] == region)


def _endpoint(d, region: str):
    return first(
        d,
        ENDPOINT,
        lambda e: e["service_name"] == f"com.amazonaws.{region}.dynamodb",
    )


def _role_policy(d, suffix: str):
    return first(d, policies.ROLE_POLICY, lambda p: p["role"].endswith(suffix))


def _grant(d, suffix: str, actions: list[str], resource: str) -> None:
    """The role gets one more statement, as a careless edit would add it."""
    document = _role_policy(d, suffix).policy_document()
    document["Statement"].append({"Effect": "Allow", "Action": actions, "Resource": resource})
    _role_policy(d, suffix).inputs["policy"] = document


def _table_statement(d, suffix: str) -> dict:
    """The statement of a role's policy that grants the link table."""
    policy = _role_policy(d, suffix)
    document = policy.policy_document()
    policy.inputs["policy"] = document
    return next(s for s in document["Statement"] if "dynamodb:GetItem" in str(s["Action"]))


def _sync_in_us_west_2(d):
    sync = function(d, "sync")
    sync.provider_region = "us-west-2"


DYNAMODB_BREAKAGES = {
    "one_link_store": [
        lambda d: added(
            d,
            "aws:elasticache/replicationGroup:ReplicationGroup",
            replication_group_id="golinks-prod-euw1",
        ),
        lambda d: function(d, "health")["environment"]["variables"].update(
            LINK_STORE="elasticache"
        ),
        lambda d: function(d, "redirect", "us-west-2")["environment"]["variables"].update(
            REDIS_URL="rediss://replica.example:6379/0"
        ),
        lambda d: function(d, "sync")["environment"]["variables"].update(LINK_TABLE="links"),
        lambda d: first(d, "aws:secretsmanager/secretVersion:SecretVersion").inputs.update(
            secret_string='{"origin_verify": "x", "redis_auth_token": "y"}'
        ),
        lambda d: d.resources.remove(_table(d)),
    ],
    "link_table_is_durable_and_everywhere": [
        lambda d: _table(d).inputs.update(billing_mode="PROVISIONED"),
        lambda d: _table(d).inputs.update(point_in_time_recovery={"enabled": False}),
        lambda d: _replica(d, "ap-southeast-1").update(point_in_time_recovery=False),
        lambda d: _table(d).inputs.update(server_side_encryption={"enabled": False}),
        lambda d: _table(d)["replicas"].remove(_replica(d, "us-west-2")),
        lambda d: _table(d)["replicas"].append({"region_name": "eu-west-1"}),
        lambda d: _table(d).inputs.update(stream_view_type="KEYS_ONLY"),
    ],
    "link_table_has_no_ttl": [
        lambda d: _table(d).inputs.update(ttl={"enabled": True, "attribute_name": "expires"}),
    ],
    "every_vpc_region_reaches_the_table_through_its_endpoint": [
        lambda d: d.resources.remove(_endpoint(d, "us-west-2")),
        lambda d: _statement(_endpoint(d, "eu-west-1")).update(Resource="*"),
        lambda d: _statement(_endpoint(d, "ap-southeast-1")).update(Resource=[OTHER_REGION_TABLE]),
        lambda d: _endpoint(d, "eu-west-1").inputs.update(policy=None),
        lambda d: _endpoint(d, "us-west-2").inputs.update(route_table_ids=[]),
    ],
    "only_the_primary_region_writes": [
        _sync_in_us_west_2,
        lambda d: _table_statement(d, "-euw1-sync").update(
            Resource="arn:aws:dynamodb:*:111111111111:table/golinks-prod-links"
        ),
        lambda d: _grant(d, "-usw2-redirect", ["dynamodb:PutItem"], OTHER_REGION_TABLE),
        lambda d: _grant(d, "-publish", ["dynamodb:BatchWriteItem"], OTHER_REGION_TABLE),
        lambda d: _table_statement(d, "-euw1-sync").update(Action=["dynamodb:GetItem"]),
        lambda d: function(d, "sync")["environment"]["variables"].update(
            LINK_TABLE_REGIONS="us-west-2,eu-west-1,ap-southeast-1"
        ),
        lambda d: function(d, "sync")["environment"]["variables"].update(
            LINK_TABLE_REGIONS="eu-west-1,us-west-2"
        ),
    ],
    "readers_read_only_their_own_replica": [
        lambda d: _table_statement(d, "-usw2-redirect").update(Resource=[OTHER_REGION_TABLE]),
        lambda d: _table_statement(d, "-apse1-health")["Action"].append("dynamodb:Scan"),
        lambda d: _grant(d, "-euw1-health", ["dynamodb:*"], "*"),
    ],
    "deploy_role_keeps_the_link_table": [
        lambda d: _drop_statement(_deploy_policy(d), "NoTableButTheLinks"),
        lambda d: _drop_statement(_deploy_policy(d), "LastingLinkTableStays"),
        lambda d: _statement(_deploy_policy(d), index="LinkTableNeverExpiresOpensOrCopies")[
            "Action"
        ].remove("dynamodb:UpdateTimeToLive"),
    ],
    "deploy_role_can_deploy_the_stack": [
        lambda d: _statement(_deploy_policy(d), index="NoTableButTheLinks").update(
            NotResource=["arn:aws:dynamodb:*:111111111111:table/golinks-prod-*-links"]
        ),
    ],
    "roles_stay_within_the_boundary": [
        lambda d: _statement(_boundary(d), index="LinkTableItems")["Action"].remove(
            "dynamodb:Scan"
        ),
    ],
    "lasting_stacks_protect_their_data": [
        lambda d: setattr(_table(d), "protect", False),
        lambda d: _replica(d, "us-west-2").update(deletion_protection_enabled=False),
        lambda d: _table(d).inputs.update(deletion_protection_enabled=False),
    ],
    "disposable_stacks_tear_down_cleanly": [
        lambda d: _torn_down(d, lambda: None),  # unprotected, but AWS would refuse the delete
        lambda d: _torn_down(
            d,
            lambda: (
                _table(d).inputs.update(deletion_protection_enabled=False)
                or [r.update(deletion_protection_enabled=False) for r in _table(d)["replicas"][1:]]
            ),
        ),
    ],
    "functions_in_vpc_with_endpoints": [
        lambda d: function(d, "sync").inputs.update(
            vpc_config=function(d, "redirect", "eu-west-1")["vpc_config"]
        ),
    ],
    "preview_role_reads_only_configuration": [
        lambda d: _statement(_preview_policy(d), index="ReadConfiguration")["Action"].append(
            "dynamodb:BatchGetItem"
        ),
        lambda d: _statement(_preview_policy(d), index="ReadConfiguration")["Action"].append(
            "dynamodb:GetRecords"
        ),
    ],
}


def test_every_policy_has_broken_variants():
    """On the Cloudflare prod stack (test_policies), its Route 53 variant (test_traffic_router)
    and its DynamoDB variant (here)."""
    names = set(BREAKAGES) | set(ROUTE53_BREAKAGES) | set(DYNAMODB_BREAKAGES)
    assert names == {p.__name__ for p in policies.ALL_POLICIES}


@pytest.mark.parametrize(("name", "index"), policies.variants(DYNAMODB_BREAKAGES))
def test_a_broken_dynamodb_variant_is_caught_and_named(dynamodb_deployments, name, index):
    broken = dynamodb_deployments["prod"].broken(DYNAMODB_BREAKAGES[name][index])
    policies.assert_caught(name, broken)


def test_a_disposable_stack_s_table_tears_down(dynamodb_deployments):
    """Without deletion protection anywhere, prod declared disposable tears down cleanly;
    with it, the lasting rules are the ones that object."""
    d = dynamodb_deployments["prod"]

    def unprotected(clone):
        _torn_down(clone, lambda: None)
        _drop_statement(_deploy_policy(clone), "LastingLinkTableStays")  # as for dev
        _table(clone).inputs.update(deletion_protection_enabled=False)
        for replica in _table(clone)["replicas"]:
            replica.update(deletion_protection_enabled=False)

    clean = d.broken(unprotected)
    assert policies.report(clean) == {}
    declared = d.broken(_declared_disposable)
    assert "disposable_stacks_tear_down_cleanly" in policies.report(declared)


def test_a_route53_stack_on_the_table_satisfies_every_policy(archive):
    """The router's Lambda@Edge function is no region's: the store rules leave it alone."""
    d = deploy("prod", archive, {**ROUTE53, **DYNAMODB})
    assert policies.report(d) == {}
