"""The DynamoDB link store (linkStore dynamodb) composed into every stack, under mocks.

The stack files stay on ElastiCache; `dynamodb_deployments` switches each one.
"""

from __future__ import annotations

import json

import pytest

from . import policies
from .conftest import DYNAMODB, ROUTE53, STACKS
from .harness import Deployment, deploy

TABLE = "aws:dynamodb/table:Table"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
REGIONS = {
    "prod": ["eu-west-1", "us-west-2", "ap-southeast-1"],
    "staging": ["eu-west-1", "us-west-2", "ap-southeast-1"],
    "dev": ["eu-west-1", "us-west-2"],
}
#: The reads the table's documents grant: a redirect's GetItem, a templated one's BatchGetItem
#: (the sync's read-backs are the same two).
READS = ["dynamodb:BatchGetItem", "dynamodb:GetItem"]


def table_arn(d: Deployment, region: str) -> str:
    return f"arn:aws:dynamodb:{region}:{d.account_id}:table/golinks-{d.stack}-links"


def purpose(function) -> str:
    return function["name"].rsplit("-", 1)[1]


def role_document(d: Deployment, function) -> dict:
    (role,) = [r for r in d.of_type(policies.ROLE) if r.outputs["arn"] == function["role"]]
    (policy,) = [p for p in d.of_type(policies.ROLE_POLICY) if p["role"] == role.id]
    return policy.policy_document()


def table_grants(document: dict) -> list[tuple[list[str], list[str]]]:
    return [
        (sorted(s["Action"]), s["Resource"])
        for s in document["Statement"]
        if any(str(a).startswith("dynamodb:") for a in s["Action"])
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_a_dynamodb_stack_has_nothing_of_elasticache(dynamodb_deployments, stack):
    d = dynamodb_deployments[stack]
    assert [r.urn for r in d.resources if r.type.startswith("aws:elasticache/")] == []
    assert [r.urn for r in d.resources if r.type == "golinks:cache:GlobalCache"] == []
    # No cache security group, no Redis rule, no ElastiCache alarm.
    groups = [g["description"] for g in d.of_type("aws:ec2/securityGroup:SecurityGroup")]
    assert "Cache nodes" not in groups
    assert [r.urn for r in d.of_type(EGRESS) + d.of_type(INGRESS) if r["from_port"] == 6379] == []
    assert "AWS/ElastiCache" not in json.dumps([a.inputs for a in d.of_type(policies.ALARM)])
    # No Redis URL, and the service secret keeps only the origin-verify value.
    for function in d.of_type(policies.FUNCTION):
        assert "REDIS_URL" not in function["environment"]["variables"], function.urn
    for version in d.of_type("aws:secretsmanager/secretVersion:SecretVersion"):
        assert list(json.loads(version["secret_string"])) == ["origin_verify"]
    assert not [r for r in d.resources if r.name.endswith("-redis-auth")]
    assert "global_datastore_id" not in d.exports
    assert (d.exports["link_store"], d.exports["link_table"]) == (
        "dynamodb",
        f"golinks-{stack}-links",
    )


@pytest.mark.parametrize("stack", STACKS)
def test_one_global_table_with_a_replica_in_every_region(dynamodb_deployments, stack):
    d = dynamodb_deployments[stack]
    table = d.one(TABLE)
    assert table.provider_region == "eu-west-1"  # the home region (linkTableHomeRegion)
    assert table["name"] == f"golinks-{stack}-links"
    replicas = {r["region_name"]: r for r in table["replicas"]}
    assert ["eu-west-1", *replicas] == REGIONS[stack]
    assert table["billing_mode"] == "PAY_PER_REQUEST"
    assert table["stream_view_type"] == "NEW_AND_OLD_IMAGES"
    assert table["point_in_time_recovery"]["enabled"] is True
    assert all(r["point_in_time_recovery"] is True for r in replicas.values())
    assert table["server_side_encryption"]["enabled"] is True
    # Protected exactly where the stack is lasting: AWS's deletion protection everywhere,
    # and Pulumi's.
    lasting = not d.program["config"].disposable
    assert lasting is (stack != "dev")
    assert table["deletion_protection_enabled"] is lasting
    assert all(r["deletion_protection_enabled"] is lasting for r in replicas.values())
    assert table.protect is lasting


@pytest.mark.parametrize("stack", STACKS)
def test_every_region_reaches_its_replica_through_a_gateway_endpoint(dynamodb_deployments, stack):
    d = dynamodb_deployments[stack]
    by_id = {r.id: r for r in d.resources if r.custom}
    for region in REGIONS[stack]:
        (endpoint,) = [
            e
            for e in d.of_type(ENDPOINT)
            if e["service_name"] == f"com.amazonaws.{region}.dynamodb"
        ]
        assert (endpoint.provider_region, endpoint["vpc_endpoint_type"]) == (region, "Gateway")
        (statement,) = endpoint.policy_document()["Statement"]
        assert statement["Resource"] == [table_arn(d, region)]
        # On the route tables of the subnets the region's functions run in.
        readers = [
            f
            for f in d.of_type(policies.FUNCTION)
            if f.provider_region == region and purpose(f) in ("redirect", "health")
        ]
        subnets = {s for f in readers for s in f["vpc_config"]["subnet_ids"]}
        associations = d.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
        routes = {a["route_table_id"] for a in associations if a["subnet_id"] in subnets}
        assert routes and set(endpoint["route_table_ids"]) == routes
        assert by_id[endpoint["vpc_id"]].provider_region == region
        # The functions' only way out to it: HTTPS to the endpoint's prefix list.
        groups = {g for f in readers for g in f["vpc_config"]["security_group_ids"]}
        (egress,) = [
            r
            for r in d.of_type(EGRESS)
            if r["prefix_list_id"] == endpoint.outputs["prefix_list_id"]
        ]
        assert egress["security_group_id"] in groups and egress["from_port"] == 443


@pytest.mark.parametrize("stack", STACKS)
def test_readers_read_their_own_replica_and_only_the_primary_sync_writes(
    dynamodb_deployments, stack
):
    d = dynamodb_deployments[stack]
    functions = d.of_type(policies.FUNCTION)
    assert sorted((f.provider_region, purpose(f)) for f in functions) == sorted(
        [(r, p) for r in REGIONS[stack] for p in ("redirect", "health")] + [("eu-west-1", "sync")]
    )
    for function in functions:
        region, env = function.provider_region, function["environment"]["variables"]
        assert (env["LINK_STORE"], env["LINK_TABLE"]) == ("dynamodb", f"golinks-{stack}-links")
        grants = table_grants(role_document(d, function))
        if purpose(function) == "sync":
            assert env["LINK_TABLE_REGIONS"] == ",".join(REGIONS[stack])  # primary first
            (writes, *read_backs) = grants
            assert writes[1] == [table_arn(d, "eu-west-1")]
            assert "dynamodb:BatchWriteItem" in writes[0] and "dynamodb:Scan" in writes[0]
            others = [table_arn(d, r) for r in REGIONS[stack][1:]]
            assert read_backs == ([(READS, others)] if others else [])
        else:
            assert "LINK_TABLE_REGIONS" not in env
            assert grants == [(READS, [table_arn(d, region)])], function.urn
    # Nothing else in the stack may touch the table's items.
    for role_policy in d.of_type(policies.ROLE_POLICY):
        if role_policy["role"].rsplit("-", 1)[1] in ("redirect", "health", "sync"):
            continue
        for actions, _ in table_grants(role_policy.policy_document()):
            assert not {"dynamodb:PutItem", "dynamodb:BatchWriteItem"} & set(actions), (
                role_policy.urn
            )


@pytest.mark.parametrize("stack", STACKS)
def test_the_sync_runs_outside_the_vpc_and_the_readers_inside(dynamodb_deployments, stack):
    d = dynamodb_deployments[stack]
    for function in d.of_type(policies.FUNCTION):
        actions = {
            a for s in role_document(d, function)["Statement"] for a in s["Action"]
        }  # fmt: skip
        if purpose(function) == "sync":
            # It reads back every region's replica; the VPC has no way out but endpoints.
            assert function["vpc_config"] is None
            assert "ec2:CreateNetworkInterface" not in actions
        else:
            assert len(function["vpc_config"]["subnet_ids"]) == 2
            assert "ec2:CreateNetworkInterface" in actions


@pytest.mark.parametrize("stack", STACKS)
def test_table_alarms_notify_each_regions_topic(dynamodb_deployments, stack):
    d = dynamodb_deployments[stack]
    topics = {t.provider_region: t.outputs["arn"] for t in d.of_type("aws:sns/topic:Topic")}
    alarms = [a for a in d.of_type(policies.ALARM) if a["namespace"] == "AWS/DynamoDB"]
    throttled = {
        (a.provider_region, a["metric_name"]) for a in alarms if "Throttle" in a["metric_name"]
    }
    assert throttled == {
        (r, f"{kind}ThrottleEvents") for r in REGIONS[stack] for kind in ("Read", "Write")
    }
    lag = [a for a in alarms if a["metric_name"] == "ReplicationLatency"]
    assert sorted(a["dimensions"]["ReceivingRegion"] for a in lag) == sorted(REGIONS[stack][1:])
    assert {a.provider_region for a in lag} == {"eu-west-1"}  # published by the sender
    for alarm in alarms:
        assert alarm["alarm_actions"] == [topics[alarm.provider_region]], alarm.urn


def test_the_store_and_the_router_are_chosen_independently(archive):
    d = deploy("dev", archive, {**ROUTE53, **DYNAMODB})
    assert (d.exports["link_store"], d.exports["link_table"]) == ("dynamodb", "golinks-dev-links")
    assert d.one(TABLE).provider_region == "eu-west-1"
    assert not [r for r in d.resources if r.type.startswith(("aws:elasticache/", "cloudflare:"))]
    assert d.one(policies.DISTRIBUTION)["aliases"] == ["go-dev.example.com"]
    readers = [f for f in d.of_type(policies.FUNCTION) if purpose(f) in ("redirect", "health")]
    assert {f["environment"]["variables"]["LINK_STORE"] for f in readers} == {"dynamodb"}
