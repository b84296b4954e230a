"""The second day: refresh after a failover, resize, failover during an outage, teardown.

Each hazard is modelled as what the provider and AWS would do (lifecycle.py),
and each test fails when the program's fix for it is undone.
"""

from __future__ import annotations

import dataclasses

import pytest

from components.failover_plan import FailoverBlocked, failover_targets

from . import lifecycle, policies
from .conftest import DYNAMODB, STACKS
from .harness import Deployment, deploy
from .lifecycle import BUCKET, GLOBAL_GROUP, REPLICATION_GROUP, SECRET, TABLE, Cloud, CloudError

OLD_PRIMARY, NEW_PRIMARY = "eu-west-1", "us-west-2"
CACHE = (GLOBAL_GROUP, REPLICATION_GROUP)


def cache_steps(steps: list[lifecycle.Step]) -> dict[str, str]:
    return {s.resource.name: s.op for s in steps if s.resource.type in CACHE}


def member(d: Deployment, region: str):
    return next(g for g in d.of_type(REPLICATION_GROUP) if g.provider_region == region)


# -- 1. the Global Datastore: refresh after a failover, resize, protection -------------


def read_back_after_failover(d: Deployment) -> dict[str, dict]:
    """What AWS reports once us-west-2 is promoted: the datastore's primary is its member,
    and the founding member is now one of the datastore's secondaries."""
    datastore = d.one(GLOBAL_GROUP)
    return {
        datastore.urn: {"primary_replication_group_id": member(d, NEW_PRIMARY).id},
        member(d, OLD_PRIMARY).urn: {
            "global_replication_group_id": datastore.outputs["global_replication_group_id"]
        },
    }


def test_a_refresh_after_failover_plans_no_replacement_of_the_datastore(deployments, promoted):
    refreshed = lifecycle.refresh(deployments["prod"], read_back_after_failover(promoted))
    datastore = refreshed[promoted.one(GLOBAL_GROUP).urn]
    assert datastore.inputs["primary_replication_group_id"] == "golinks-prod-usw2"
    steps = lifecycle.plan(refreshed, promoted)
    assert set(cache_steps(steps).values()) == {"same"}, cache_steps(steps)
    assert lifecycle.rejections(steps, refreshed) == []


def test_the_model_replaces_a_datastore_that_does_not_ignore_the_read_back(deployments, promoted):
    careless = promoted.broken(lambda d: setattr(d.one(GLOBAL_GROUP), "ignore_changes", ()))
    refreshed = lifecycle.refresh(deployments["prod"], read_back_after_failover(promoted))
    steps = lifecycle.plan(refreshed, careless)
    assert cache_steps(steps)["cache-global"] == "replace"
    assert "protected" in "\n".join(lifecycle.rejections(steps, refreshed))


@pytest.fixture(scope="module")
def resized(archive) -> Deployment:
    return deploy("prod", archive, {"golinks:cacheNodeType": "cache.r7g.xlarge"})


def test_a_node_type_change_updates_only_the_global_datastore(deployments, resized):
    state = lifecycle.state_of(deployments["prod"])
    steps = lifecycle.plan(state, resized)
    datastore = resized.one(GLOBAL_GROUP).urn
    assert lifecycle.changes(steps) == {datastore: ("update", ("cache_node_type",))}
    assert lifecycle.rejections(steps, state) == []
    cloud = Cloud()
    after = lifecycle.apply(steps, state, cloud)
    assert [(op, urn) for op, _, urn in cloud.calls if op != "configure"] == [("update", datastore)]
    # AWS resizes every member; the next refresh reads the new type back: nothing to do.
    members = {g.urn: {"node_type": "cache.r7g.xlarge"} for g in resized.of_type(REPLICATION_GROUP)}
    assert lifecycle.changes(lifecycle.plan(lifecycle.refresh(after, members), resized)) == {}


def test_the_model_refuses_a_node_type_sent_to_a_member(deployments, resized):
    founder = member(resized, OLD_PRIMARY)
    careless = resized.broken(
        lambda d: setattr(member(d, OLD_PRIMARY), "ignore_changes", ("engine_version",))
    )
    state = lifecycle.state_of(deployments["prod"])
    steps = lifecycle.plan(state, careless)
    assert lifecycle.changes(steps)[founder.urn] == ("update", ("node_type",))
    with pytest.raises(CloudError, match="InvalidParameterCombination"):
        lifecycle.apply(steps, state, Cloud())


def stateful(d: Deployment) -> set[str]:
    index_buckets = {b.urn for b in d.of_type(BUCKET) if "-index-" in b["bucket"]}
    return {r.urn for r in d.resources if r.type in (*CACHE, SECRET)} | index_buckets


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_lasting_stacks_protect_their_stateful_resources(deployments, stack):
    d = deployments[stack]
    assert {r.urn for r in d.resources if r.protect} == stateful(d)
    assert len(stateful(d)) == 1 + 3 + 3 + 3  # datastore, members, secrets, index buckets
    with pytest.raises(CloudError, match="protected, Pulumi refuses to destroy"):
        lifecycle.destroy(lifecycle.create(d, Cloud()), Cloud())


# -- 2. teardown and re-create -----------------------------------------------------------


def test_a_disposable_stack_is_destroyed_and_created_again_and_again(deployments):
    dev, cloud = deployments["dev"], Cloud()
    first = None
    for _ in range(3):
        state = lifecycle.create(dev, cloud)  # raises if a name is still taken
        names = sorted(cloud.names)
        assert first in (None, names)  # the same names every time
        first = names
        lifecycle.destroy(state, cloud)  # raises on a bucket that keeps its objects
        assert cloud.names == {}, "a destroy left names held"
    assert {b.urn for b in dev.of_type(BUCKET)} <= {u for _, _, u in cloud.calls}


def test_the_model_holds_what_a_lasting_stack_would_keep(deployments):
    """Without force_destroy a versioned bucket refuses; a recovery window holds the name."""
    keeps_objects = deployments["dev"].broken(
        lambda d: [b.inputs.update(force_destroy=False) for b in d.of_type(BUCKET)]
    )
    with pytest.raises(CloudError, match="BucketNotEmpty"):
        lifecycle.destroy(lifecycle.create(keeps_objects, Cloud()), Cloud())
    holds_names = deployments["dev"].broken(
        lambda d: [s.inputs.update(recovery_window_in_days=7) for s in d.of_type(SECRET)]
    )
    cloud = Cloud()
    lifecycle.destroy(lifecycle.create(holds_names, cloud), cloud)
    with pytest.raises(CloudError, match="scheduled for deletion"):
        lifecycle.create(holds_names, cloud)


# -- 3. failover while the old primary region is down ----------------------------------


@pytest.fixture(scope="module")
def failover(deployments, promoted):
    state = lifecycle.state_of(deployments["prod"])
    steps = lifecycle.plan(state, promoted)
    plan = failover_targets(lifecycle.preview_json("prod", steps), [OLD_PRIMARY])
    return state, steps, plan


def test_the_failover_update_succeeds_while_the_old_primary_region_is_down(promoted, failover):
    state, steps, plan = failover
    cloud = Cloud(unreachable=frozenset({OLD_PRIMARY}))
    after = lifecycle.apply(steps, state, cloud, plan.targets)
    assert OLD_PRIMARY not in {region for _, region, _ in cloud.calls}

    # Writes resume in us-west-2: its sync writes to its (promoted) member, notified
    # by its bucket; the publisher may write there; replication and fallback follow.
    def now(type_: str, where=lambda r: True) -> list:
        return [r for r in after.values() if r.type == type_ and where(r)]

    (sync,) = now(
        policies.FUNCTION,
        lambda f: f.provider_region == NEW_PRIMARY and f["name"].endswith("-sync"),
    )
    env = sync["environment"]["variables"]
    assert env["PRIMARY_REGION"] == NEW_PRIMARY
    assert member(promoted, NEW_PRIMARY).outputs["primary_endpoint_address"] in env["REDIS_URL"]
    new_bucket = promoted.exports["regions"][NEW_PRIMARY]["index_bucket"]
    (notification,) = now(
        "aws:s3/bucketNotification:BucketNotification", lambda n: n["bucket"] == new_bucket
    )
    assert notification["lambda_functions"][0]["lambda_function_arn"] == sync.outputs["arn"]
    assert now(policies.PERMISSION, lambda p: p["source_arn"] == f"arn:aws:s3:::{new_bucket}")
    assert now(
        "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
        lambda c: c["bucket"] == new_bucket,
    )
    (publisher,) = now(policies.ROLE_POLICY, lambda p: p["role"].endswith("-publish"))
    assert new_bucket in publisher["policy"]
    balancer = now("cloudflare:index/loadBalancer:LoadBalancer")[0]
    assert balancer.inputs == promoted.one("cloudflare:index/loadBalancer:LoadBalancer").inputs
    assert plan.targets[0].endswith("::pulumi:pulumi:Stack::golinks-prod")  # outputs too


def test_only_the_old_primary_region_is_left_for_later(failover):
    _, steps, plan = failover
    by_urn = {s.urn: s for s in steps}
    assert plan.deferred, "the old primary's sync and notification wait for the region"
    assert {by_urn[urn].resource.provider_region for _, urn in plan.deferred} == {OLD_PRIMARY}
    assert {op for op, _ in plan.deferred} <= {"create", "update", "delete"}
    # Only the old primary's writer parts wait: what its readers run is already right.
    waiting = {by_urn[urn].resource.name for _, urn in plan.deferred}
    assert waiting == {
        "api-eu-west-1-sync",  # function, role, policy, log group
        "api-eu-west-1-sync-from-s3",
        "api-eu-west-1-sync-throttles",
        "api-eu-west-1-index-published",
        "api-eu-west-1-replication-lag",
        "link-index-replication-eu-west-1",
        # The sync's failure queue, its async settings and alarms go with it.
        "api-eu-west-1-sync-failures",
        "api-eu-west-1-sync-async",
        "api-eu-west-1-sync-errors",
        "api-eu-west-1-sync-failures-queued",
        "api-eu-west-1-sync-failures-undeliverable",
        "link-index-replication-eu-west-1-to-us-west-2",
        "link-index-replication-eu-west-1-to-ap-southeast-1",
    }


def test_a_plain_update_would_need_the_region_that_is_down(failover):
    state, steps, _ = failover
    with pytest.raises(CloudError, match=f"{OLD_PRIMARY} is unreachable"):
        lifecycle.apply(steps, state, Cloud(unreachable=frozenset({OLD_PRIMARY})))


def test_once_the_region_is_back_a_full_update_finishes_the_failover(promoted, failover):
    state, steps, plan = failover
    during = lifecycle.apply(steps, state, Cloud(frozenset({OLD_PRIMARY})), plan.targets)
    after = lifecycle.apply(lifecycle.plan(during, promoted), during, Cloud())
    assert set(after) == {r.urn for r in promoted.resources}
    assert lifecycle.changes(lifecycle.plan(after, promoted)) == {}


# -- 4. the DynamoDB link store: refresh, teardown, failover with a region down --------


AWS_MANAGED_KEY = "0b1d2e3f-4a5b-6c7d-8e9f-0123456789ab"  # aws/dynamodb, as DescribeTable names it


def table_read_back(d: Deployment) -> dict[str, dict]:
    """What the provider reads back for the global table: every replica with the attributes
    AWS computes, in AWS's order (a set, not the program's list), the stream it replicates
    from, on-demand billing as zero capacity, the managed key of its encryption."""
    table = d.one(TABLE)
    key = f"arn:aws:kms:{table.provider_region}:{d.account_id}:key/{AWS_MANAGED_KEY}"
    replicas = [
        {**replica, "kms_key_arn": "", "consistency_mode": "EVENTUAL"}
        for replica in reversed(table.outputs["replicas"])
    ]
    return {
        table.urn: {
            "replicas": replicas,
            "stream_enabled": True,
            "stream_view_type": "NEW_AND_OLD_IMAGES",
            "billing_mode": "PAY_PER_REQUEST",
            "read_capacity": 0,
            "write_capacity": 0,
            "server_side_encryption": {"enabled": True, "kms_key_arn": key},
            "point_in_time_recovery": {"enabled": True, "recovery_period_in_days": 35},
            "ttl": {"enabled": False, "attribute_name": ""},
            "deletion_protection_enabled": table["deletion_protection_enabled"],
        }
    }


@pytest.mark.parametrize("stack", STACKS)
def test_a_refresh_of_the_global_table_plans_nothing(dynamodb_deployments, stack):
    d = dynamodb_deployments[stack]
    refreshed = lifecycle.refresh(d, table_read_back(d))
    # The state now holds what AWS computed, in AWS's order; none of it is a change.
    assert refreshed[d.one(TABLE).urn].inputs["replicas"] != d.one(TABLE)["replicas"]
    assert lifecycle.changes(lifecycle.plan(refreshed, d)) == {}


def test_the_model_catches_a_table_that_leaves_its_stream_to_aws(dynamodb_deployments):
    """Replicas need the NEW_AND_OLD_IMAGES stream: a program that does not set it would,
    after a refresh, turn it off on the next update, and AWS refuses that."""
    d = dynamodb_deployments["prod"]
    careless = d.broken(
        lambda c: [c.one(TABLE).inputs.pop(k) for k in ("stream_enabled", "stream_view_type")]
    )
    refreshed = lifecycle.refresh(d, table_read_back(d))
    steps = lifecycle.plan(refreshed, careless)
    assert lifecycle.changes(steps) == {d.one(TABLE).urn: ("update", ("stream_enabled",))}
    with pytest.raises(CloudError, match="NEW_AND_OLD_IMAGES stream"):
        lifecycle.apply(steps, refreshed, Cloud())


def test_the_model_replaces_a_table_whose_name_changes(dynamodb_deployments):
    d = dynamodb_deployments["prod"]
    renamed = d.broken(lambda c: c.one(TABLE).inputs.update(name="golinks-prod-links-2"))
    steps = lifecycle.plan(d, renamed)
    assert lifecycle.changes(steps)[d.one(TABLE).urn] == ("replace", ("name",))
    assert "protected" in "\n".join(lifecycle.rejections(steps, lifecycle.state_of(d)))


def test_a_disposable_dynamodb_stack_is_destroyed_and_created_again(dynamodb_deployments):
    dev, cloud = dynamodb_deployments["dev"], Cloud()
    table = (TABLE, "golinks-dev-links")
    for _ in range(3):
        state = lifecycle.create(dev, cloud)  # raises if a name is still taken
        assert {(t, r) for t, r, n in cloud.names if (t, n) == table} == {
            (TABLE, "eu-west-1"),
            (TABLE, "us-west-2"),
        }
        lifecycle.destroy(state, cloud)  # raises on deletion protection
        assert cloud.names == {}, "a destroy left names held"


def test_the_model_refuses_to_delete_a_table_under_deletion_protection(dynamodb_deployments):
    protected_replica = dynamodb_deployments["dev"].broken(
        lambda d: d.one(TABLE)["replicas"][0].update(deletion_protection_enabled=True)
    )
    cloud = Cloud()
    with pytest.raises(CloudError, match="deletion protection is enabled"):
        lifecycle.destroy(lifecycle.create(protected_replica, cloud), cloud)


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_lasting_dynamodb_stacks_protect_the_table(dynamodb_deployments, stack):
    d = dynamodb_deployments[stack]
    table = d.one(TABLE)
    assert {r.urn for r in d.resources if r.protect} == {table.urn} | stateful(d)
    created = lifecycle.create(d, Cloud())[table.urn]
    # Twice: Pulumi refuses, and without Pulumi's protect AWS refuses.
    with pytest.raises(CloudError, match="protected, Pulumi refuses to destroy"):
        lifecycle.destroy({table.urn: created}, Cloud())
    unprotected = dataclasses.replace(created, protect=False)
    with pytest.raises(CloudError, match="deletion protection is enabled"):
        lifecycle.destroy({table.urn: unprotected}, Cloud())


DYNAMODB_PROMOTED = {**DYNAMODB, "golinks:primaryRegion": NEW_PRIMARY}


@pytest.fixture(scope="module")
def table_failover(archive, dynamodb_deployments):
    """prod on DynamoDB, writes moved to us-west-2 while eu-west-1 (the table's home) is down."""
    before = lifecycle.state_of(dynamodb_deployments["prod"])
    after = deploy("prod", archive, DYNAMODB_PROMOTED)
    steps = lifecycle.plan(before, after)
    plan = failover_targets(lifecycle.preview_json("prod", steps), [OLD_PRIMARY])
    return before, after, steps, plan


def test_writes_move_to_another_replica_while_the_tables_home_is_down(table_failover):
    before, after, steps, plan = table_failover
    table = next(s for s in steps if s.resource.type == TABLE)
    assert table.op == "same" and table.resource.provider_region == OLD_PRIMARY
    cloud = Cloud(unreachable=frozenset({OLD_PRIMARY}))
    state = lifecycle.apply(steps, before, cloud, plan.targets)
    assert OLD_PRIMARY not in {region for _, region, _ in cloud.calls}

    (sync,) = [
        r
        for r in state.values()
        if r.type == policies.FUNCTION
        and r.provider_region == NEW_PRIMARY
        and r["name"].endswith("-sync")
    ]
    env = sync["environment"]["variables"]
    assert env["LINK_TABLE_REGIONS"] == "us-west-2,eu-west-1,ap-southeast-1"
    assert env["PRIMARY_REGION"] == NEW_PRIMARY and sync["vpc_config"] is None
    (role,) = [r for r in state.values() if r.type == policies.ROLE_POLICY and r.name == sync.name]
    writes = next(
        s for s in role.policy_document()["Statement"] if "dynamodb:PutItem" in s["Action"]
    )
    assert writes["Resource"] == [
        f"arn:aws:dynamodb:{NEW_PRIMARY}:{after.account_id}:table/golinks-prod-links"
    ]
    # Replication is now watched from the new sender, to every other region.
    lag = [
        r
        for r in state.values()
        if r.type == policies.ALARM
        and r["metric_name"] == "ReplicationLatency"
        and r.provider_region == NEW_PRIMARY
    ]
    assert sorted(a["dimensions"]["ReceivingRegion"] for a in lag) == [
        "ap-southeast-1",
        OLD_PRIMARY,
    ]
    by_urn = {s.urn: s for s in steps}
    assert {by_urn[urn].resource.provider_region for _, urn in plan.deferred} == {OLD_PRIMARY}


def test_once_the_tables_home_is_back_a_full_update_finishes_the_failover(table_failover):
    before, after, steps, plan = table_failover
    during = lifecycle.apply(steps, before, Cloud(frozenset({OLD_PRIMARY})), plan.targets)
    done = lifecycle.apply(lifecycle.plan(during, after), during, Cloud())
    assert set(done) == {r.urn for r in after.resources}
    assert lifecycle.changes(lifecycle.plan(done, after)) == {}


def test_a_table_that_follows_the_primary_would_be_replaced_and_block_the_failover(
    archive, dynamodb_deployments
):
    """The table stays where it was created: moved with the writes, it would be a new table,
    created in one region and deleted in the one that is down."""
    before = lifecycle.state_of(dynamodb_deployments["prod"])
    moved = deploy(
        "prod", archive, {**DYNAMODB_PROMOTED, "golinks:linkTableHomeRegion": NEW_PRIMARY}
    )
    steps = lifecycle.plan(before, moved)
    table = next(s for s in steps if s.resource.type == TABLE)
    assert (table.op, table.changed[0]) == ("replace", "provider")
    assert "protected, Pulumi refuses to replace" in "\n".join(lifecycle.rejections(steps, before))
    with pytest.raises(FailoverBlocked, match=r"aws:dynamodb/table:Table::link-table-table spans"):
        failover_targets(lifecycle.preview_json("prod", steps), [OLD_PRIMARY])
