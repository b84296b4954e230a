"""The second day: refresh after a failover, resize, failover during an outage, teardown.

Each hazard is modelled as what the provider and AWS would do (lifecycle.py),
and each test fails when the program's fix for it is undone.
"""

from __future__ import annotations

import pytest

from components.failover_plan import failover_targets

from . import lifecycle, policies
from .harness import Deployment, deploy
from .lifecycle import BUCKET, GLOBAL_GROUP, REPLICATION_GROUP, SECRET, Cloud, CloudError

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
