"""LinkTable under mocks: the global table, its endpoints, alarms and access, region by region."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
import pytest
from pulumi.runtime import settings as runtime_settings

from components.link_table import LinkTable, LinkTableArgs, LinkTableRegion

from .harness import CloudMocks, RecordingMonitor, Resource

ACCOUNT = "111111111111"
PRIMARY = "eu-west-1"
REGIONS = ("eu-west-1", "us-west-2", "ap-southeast-1")


def deploy_link_table(**overrides) -> tuple[list[Resource], LinkTable]:
    """The component alone, in three regions, recorded by the harness's monitor."""
    monitor_ref: dict = {}
    mocks = CloudMocks(ACCOUNT, monitor_ref)
    monitor = RecordingMonitor(mocks)
    monitor_ref["monitor"] = monitor
    runtime_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project="golinks", stack="dev", preview=False, monitor=monitor)
    made: dict = {}

    @pulumi.runtime.test
    def run():
        regions = {
            region: LinkTableRegion(
                provider=aws.Provider(f"aws-{region}", region=region),
                vpc_id=f"vpc-{region}",
                route_table_ids=[f"rtb-{region}"],
                function_security_group_id=f"sg-{region}",
            )
            for region in REGIONS
        }
        args = LinkTableArgs(
            stack="dev", account_id=ACCOUNT, primary_region=PRIMARY, regions=regions
        )
        for key, value in overrides.items():
            setattr(args, key, value)
        made["table"] = LinkTable("links", args)
        return made["table"].table_name.apply(lambda _: None)

    run()
    return monitor.records, made["table"]


@pytest.fixture(scope="module")
def deployed():
    return deploy_link_table()


def of_type(resources: list[Resource], type_: str) -> list[Resource]:
    return [r for r in resources if r.type == type_]


def test_one_global_table_in_the_primary_with_a_replica_everywhere_else(deployed):
    resources, _ = deployed
    (table,) = of_type(resources, "aws:dynamodb/table:Table")
    assert table.provider_region == PRIMARY
    assert table["name"] == "golinks-dev-links"
    assert table["billing_mode"] == "PAY_PER_REQUEST"
    assert table["hash_key"] == "pk" and table["attributes"] == [{"name": "pk", "type": "S"}]
    assert table["stream_enabled"] and table["stream_view_type"] == "NEW_AND_OLD_IMAGES"
    assert table["point_in_time_recovery"]["enabled"] is True
    assert table["server_side_encryption"]["enabled"] is True
    assert not table["ttl"], "expiry is the readers' job: TTL deletes race republished links"
    assert table["deletion_protection_enabled"] is False
    replicas = {r["region_name"]: r for r in table["replicas"]}
    assert set(replicas) == {"us-west-2", "ap-southeast-1"}
    assert all(r["point_in_time_recovery"] and r["propagate_tags"] for r in replicas.values())


def test_protected_stacks_protect_every_replica():
    resources, _ = deploy_link_table(protect=True)
    (table,) = of_type(resources, "aws:dynamodb/table:Table")
    assert table["deletion_protection_enabled"] is True
    assert all(r["deletion_protection_enabled"] for r in table["replicas"])


def test_every_region_reaches_its_replica_through_a_gateway_endpoint_for_this_table(deployed):
    resources, _ = deployed
    endpoints = {
        e.provider_region: e for e in of_type(resources, "aws:ec2/vpcEndpoint:VpcEndpoint")
    }
    assert set(endpoints) == set(REGIONS)
    for region, endpoint in endpoints.items():
        assert endpoint["service_name"] == f"com.amazonaws.{region}.dynamodb"
        assert endpoint["vpc_endpoint_type"] == "Gateway"
        assert endpoint["route_table_ids"] == [f"rtb-{region}"]
        (statement,) = endpoint.policy_document()["Statement"]
        assert statement["Resource"] == [
            f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/golinks-dev-links"
        ]
    egress = {
        rule.provider_region: rule
        for rule in of_type(resources, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    }
    for region, rule in egress.items():
        assert rule["security_group_id"] == f"sg-{region}" and rule["from_port"] == 443
        assert rule["prefix_list_id"] == endpoints[region].outputs["prefix_list_id"]
    assert set(egress) == set(REGIONS)


def test_alarms_on_throttles_everywhere_and_on_replication_latency_per_receiver(deployed):
    resources, _ = deployed
    alarms = of_type(resources, "aws:cloudwatch/metricAlarm:MetricAlarm")
    throttles = {
        (a.provider_region, a["metric_name"]) for a in alarms if "Throttle" in a["metric_name"]
    }
    assert throttles == {
        (r, m) for r in REGIONS for m in ("ReadThrottleEvents", "WriteThrottleEvents")
    }
    latency = [a for a in alarms if a["metric_name"] == "ReplicationLatency"]
    # Published by the sending region, one series per receiving region.
    assert {a.provider_region for a in latency} == {PRIMARY}
    assert {a["dimensions"]["ReceivingRegion"] for a in latency} == {"us-west-2", "ap-southeast-1"}


def test_readers_get_their_own_replica_only_and_only_the_primary_is_written(deployed):
    _, table = deployed
    arn = "arn:aws:dynamodb:{}:" + ACCOUNT + ":table/golinks-dev-links"
    for region in REGIONS:
        (statement,) = json.loads(table.reader_policy(region))["Statement"]
        assert statement["Action"] == ["dynamodb:BatchGetItem", "dynamodb:GetItem"]
        assert statement["Resource"] == [arn.format(region)]
    writes, read_backs = json.loads(table.writer_policy())["Statement"]
    assert writes["Resource"] == [arn.format(PRIMARY)]
    assert "dynamodb:BatchWriteItem" in writes["Action"]
    assert read_backs["Resource"] == [arn.format("us-west-2"), arn.format("ap-southeast-1")]
    assert sorted(read_backs["Action"]) == ["dynamodb:BatchGetItem", "dynamodb:GetItem"]


def test_every_child_is_parented_to_the_component(deployed):
    resources, _ = deployed
    (component,) = [r for r in resources if r.type == "golinks:store:LinkTable"]
    for resource in resources:
        if resource.custom and resource.type != "pulumi:providers:aws":
            assert resource.parent == component.urn, resource.urn


def test_the_primary_must_be_one_of_the_regions():
    with pytest.raises(Exception, match="primary region us-east-1 must be one of the regions"):
        deploy_link_table(primary_region="us-east-1")


def test_the_table_stays_home_when_writes_move_to_another_region():
    resources, table = deploy_link_table(primary_region="us-west-2", home_region=PRIMARY)
    (created,) = of_type(resources, "aws:dynamodb/table:Table")
    assert created.provider_region == PRIMARY
    assert {r["region_name"] for r in created["replicas"]} == {"us-west-2", "ap-southeast-1"}
    writes, read_backs = json.loads(table.writer_policy())["Statement"]
    assert writes["Resource"] == [f"arn:aws:dynamodb:us-west-2:{ACCOUNT}:table/golinks-dev-links"]
    assert len(read_backs["Resource"]) == 2
    # Watched from the new sender, under names of their own (the old sender's may be down).
    latency = [
        a
        for a in of_type(resources, "aws:cloudwatch/metricAlarm:MetricAlarm")
        if a["metric_name"] == "ReplicationLatency"
    ]
    assert {a.provider_region for a in latency} == {"us-west-2"}
    assert sorted(a["name"] for a in latency) == [
        "golinks-dev-links-us-west-2-to-ap-southeast-1-replication-latency",
        "golinks-dev-links-us-west-2-to-eu-west-1-replication-latency",
    ]


def test_the_home_must_be_one_of_the_regions():
    with pytest.raises(Exception, match="home region us-east-1 must be one of the regions"):
        deploy_link_table(home_region="us-east-1")
