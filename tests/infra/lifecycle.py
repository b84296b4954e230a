"""The second day: what Pulumi and the AWS provider do with a deployment after the first `up`.

The mocks (harness.py) run the program once; this models what happens next,
with the behaviour that only shows then:
- `refresh()`: the state after `pulumi refresh`, holding what the provider
  reads back (e.g. the promoted member as the datastore's primary after a
  failover, a global table's replicas with their computed attributes, in AWS's
  order). Like the bridged providers, it updates the inputs it reads.
- `plan()`: what `pulumi up` would do to each resource, from the provider
  schema's replace-on-change ("ForceNew") arguments, its set-typed and
  computed arguments, ignore_changes, and a change of provider (region).
- `Cloud`: the calls an update or a destroy makes, against a small model of
  AWS: refusals AWS would answer (a member resized directly, a non-empty bucket
  deleted, a name still held in a recovery window, a table under deletion
  protection, a global table's stream turned off), and a region whose every
  call fails.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field

from .harness import Deployment, Resource

GLOBAL_GROUP = "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
BUCKET = "aws:s3/bucket:Bucket"
SECRET = "aws:secretsmanager/secret:Secret"
TABLE = "aws:dynamodb/table:Table"
STACK = "pulumi:pulumi:Stack"

#: Arguments whose change replaces the resource ("ForceNew" in the schema), in the
#: Python SDK's spelling. From hashicorp/terraform-provider-aws, internal/service/:
#: elasticache/global_replication_group.go, elasticache/replication_group.go,
#: elasticache/subnet_group.go, secretsmanager/secret.go, secretsmanager/
#: secret_version.go, s3/bucket.go, s3/bucket_notification.go,
#: s3/bucket_replication_configuration.go, lambda/function.go (function_name),
#: lambda/permission.go (no Update: every argument), iam/role.go,
#: iam/role_policy.go, logs/group.go, cloudwatch/metric_alarm.go (alarm_name),
#: sns/topic.go, dynamodb/table.go. Pulumi replaces too when a resource's provider
#: (region) changes.
REPLACE_ON_CHANGE: dict[str, frozenset[str]] = {
    GLOBAL_GROUP: frozenset({"global_replication_group_id_suffix", "primary_replication_group_id"}),
    REPLICATION_GROUP: frozenset(
        {
            "replication_group_id",
            "at_rest_encryption_enabled",
            "global_replication_group_id",
            "subnet_group_name",
            "port",
            "kms_key_id",
            "network_type",
            "data_tiering_enabled",
            "snapshot_arns",
            "snapshot_name",
            "security_group_names",
        }
    ),
    "aws:elasticache/subnetGroup:SubnetGroup": frozenset({"name"}),
    SECRET: frozenset({"name", "name_prefix"}),
    "aws:secretsmanager/secretVersion:SecretVersion": frozenset({"secret_id"}),
    BUCKET: frozenset({"bucket", "bucket_prefix", "object_lock_enabled"}),
    "aws:s3/bucketNotification:BucketNotification": frozenset({"bucket"}),
    "aws:s3/bucketReplicationConfig:BucketReplicationConfig": frozenset({"bucket"}),
    "aws:lambda/function:Function": frozenset({"name"}),
    "aws:lambda/permission:Permission": frozenset(
        {"action", "function", "principal", "source_arn", "source_account", "statement_id"}
    ),
    "aws:iam/role:Role": frozenset({"name", "name_prefix", "path"}),
    "aws:iam/rolePolicy:RolePolicy": frozenset({"role", "name", "name_prefix"}),
    "aws:cloudwatch/logGroup:LogGroup": frozenset({"name", "name_prefix"}),
    "aws:cloudwatch/metricAlarm:MetricAlarm": frozenset({"name"}),
    "aws:sns/topic:Topic": frozenset({"name", "name_prefix", "fifo_topic"}),
    TABLE: frozenset(
        {
            "name",
            "hash_key",
            "range_key",
            "local_secondary_indexes",
            "import_table",
            "restore_source_name",
            "restore_source_table_arn",
            "restore_date_time",
            "restore_to_latest_time",
        }
    ),
}
#: List arguments the provider holds as sets, by the argument naming an element:
#: the order a refresh reads them back in is no change.
SET_ARGUMENTS: dict[str, dict[str, str]] = {
    TABLE: {"replicas": "region_name", "attributes": "name"},
}
#: Arguments the provider computes when the program leaves them unset (Optional and
#: Computed in the schema), at the top ("") or in each element of a block: what a
#: refresh reads back there is no change. From dynamodb/table.go.
COMPUTED_WHEN_UNSET: dict[str, dict[str, frozenset[str]]] = {
    TABLE: {
        "": frozenset(
            {
                "read_capacity",
                "write_capacity",
                "stream_view_type",
                "ttl",
                "on_demand_throughput",
                "warm_throughput",
                "attributes",
            }
        ),
        "replicas": frozenset(
            {"arn", "stream_arn", "stream_label", "kms_key_arn", "consistency_mode"}
        ),
        "server_side_encryption": frozenset({"kms_key_arn"}),
        "point_in_time_recovery": frozenset({"recovery_period_in_days"}),
    },
}

#: The argument holding a resource's physical name, which AWS keeps unique.
PHYSICAL_NAME = {
    GLOBAL_GROUP: "global_replication_group_id_suffix",
    REPLICATION_GROUP: "replication_group_id",
    "aws:elasticache/subnetGroup:SubnetGroup": "name",
    SECRET: "name",
    BUCKET: "bucket",
    "aws:lambda/function:Function": "name",
    "aws:iam/role:Role": "name",
    "aws:cloudwatch/logGroup:LogGroup": "name",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "name",
    "aws:sns/topic:Topic": "name",
    TABLE: "name",
    "aws:wafv2/webAcl:WebAcl": "name",
    "aws:cloudfront/originAccessControl:OriginAccessControl": "name",
    "aws:cloudfront/cachePolicy:CachePolicy": "name",
}
#: What AWS answers ElastiCache changes sent to a Global Datastore member.
MEMBER_ONLY_VIA_DATASTORE = ("node_type", "engine_version", "engine")
#: Secrets Manager's recovery window when none is given.
DEFAULT_RECOVERY_DAYS = 30


# -- refresh and plan ----------------------------------------------------------------


State = dict[str, Resource]


def state_of(deployment: Deployment) -> State:
    return {r.urn: copy.deepcopy(r) for r in deployment.resources}


def refresh(state: State | Deployment, read_back: dict[str, dict]) -> State:
    """`pulumi refresh`: each resource's state as the provider reads it back.

    `read_back` maps a URN to the values the cloud now holds. As the bridged
    providers do, outputs take them, and so do the inputs already recorded.
    """
    refreshed = state_of(state) if isinstance(state, Deployment) else copy.deepcopy(state)
    for urn, values in read_back.items():
        resource = refreshed[urn]
        resource.outputs.update(values)
        resource.inputs.update({k: v for k, v in values.items() if k in resource.inputs})
    return refreshed


@dataclass
class Step:
    op: str
    """same, update, replace, create or delete."""
    urn: str
    old: Resource | None
    new: Resource | None
    changed: tuple[str, ...] = ()

    @property
    def resource(self) -> Resource:
        return self.new or self.old  # type: ignore[return-value]


def _unset(value) -> bool:
    return value is None or value in ([], {})


def _elements(value) -> list[dict]:
    """A block's elements: a list of objects, or one object."""
    if isinstance(value, dict):
        return [value]
    return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []


def _provider_view(type_: str, inputs: dict, old: dict) -> tuple[dict, dict]:
    """The program's inputs and the state as the provider compares them: what it computes
    itself is kept from the state where the program leaves it unset, and sets are sorted."""
    computed = COMPUTED_WHEN_UNSET.get(type_, {})
    sets = SET_ARGUMENTS.get(type_, {})
    inputs, old = copy.deepcopy(inputs), copy.deepcopy(old)
    for key in computed.get("", frozenset()):
        if _unset(inputs.get(key)) and key in old:
            inputs[key] = old[key]
    for block, fields in computed.items():
        if not block or _unset(inputs.get(block)):
            continue
        key = sets.get(block)
        olds = _elements(old.get(block))
        for index, element in enumerate(_elements(inputs[block])):
            match = (
                next((o for o in olds if o.get(key) == element.get(key)), {})
                if key
                else (olds[index] if index < len(olds) else {})
            )
            for field_ in fields:
                if _unset(element.get(field_)) and field_ in match:
                    element[field_] = match[field_]
    for view in (inputs, old):
        for block, key in sets.items():
            if isinstance(view.get(block), list):
                view[block] = sorted(view[block], key=lambda e: str(e.get(key)))
    return inputs, old


def diff(old: Resource, new: Resource) -> Step:
    """One resource's step, as the engine and the provider's Diff decide it."""
    inputs = {**new.inputs}
    for ignored in new.ignore_changes:  # the engine sends the old value instead
        if ignored in old.inputs:
            inputs[ignored] = old.inputs[ignored]
        else:
            inputs.pop(ignored, None)
    inputs, before = _provider_view(new.type, inputs, old.inputs)
    changed = sorted(k for k in inputs.keys() | before.keys() if inputs.get(k) != before.get(k))
    new.inputs = inputs
    if old.provider_region != new.provider_region:
        return Step("replace", new.urn, old, new, ("provider", *changed))
    if not changed:
        return Step("same", new.urn, old, new)
    replaces = set(changed) & REPLACE_ON_CHANGE.get(new.type, frozenset())
    return Step("replace" if replaces else "update", new.urn, old, new, tuple(changed))


def plan(old: State | Deployment, new: Deployment) -> list[Step]:
    """`pulumi up` (no refresh) from state `old` to the program's `new` registrations."""
    before = state_of(old) if isinstance(old, Deployment) else old
    steps = []
    for resource in copy.deepcopy(new.resources):
        previous = before.get(resource.urn)
        steps.append(
            diff(previous, resource) if previous else Step("create", resource.urn, None, resource)
        )
    registered = {r.urn for r in new.resources}
    steps.extend(Step("delete", urn, r, None) for urn, r in before.items() if urn not in registered)
    return steps


def changes(steps: list[Step]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """URN -> (operation, changed arguments) for every step that changes something."""
    return {s.urn: (s.op, s.changed) for s in steps if s.op != "same"}


def preview_json(stack: str, steps: list[Step]) -> dict:
    """The steps as `pulumi preview --json` prints them (the fields the runbook reads)."""

    def state(resource: Resource | None) -> dict | None:
        if resource is None:
            return None
        return {
            "urn": resource.urn,
            "type": resource.type,
            "custom": resource.custom,
            "parent": resource.parent,
            "provider": resource.provider,
            "dependencies": resource.dependencies,
            "inputs": resource.inputs,
        }

    root = f"urn:pulumi:{stack}::golinks::{STACK}::golinks-{stack}"
    rendered = [{"op": "same", "urn": root, "newState": {"urn": root, "type": STACK}}]
    for step in steps:
        rendered.append(
            {
                "op": step.op,
                "urn": step.urn,
                "provider": step.resource.provider,
                "oldState": state(step.old),
                "newState": state(step.new),
            }
        )
    return {"steps": rendered}


# -- the cloud the steps are applied to ------------------------------------------------


class CloudError(Exception):
    """What AWS (or the Pulumi engine) answers instead of doing it."""


@dataclass
class Cloud:
    """Physical names, bucket contents and reachability: enough AWS to apply steps to.

    Every call goes through `call`; a region in `unreachable` fails every call
    made in it, including the STS call that configures its provider.
    """

    unreachable: frozenset[str] = frozenset()
    names: dict[tuple[str, str, str], str] = field(default_factory=dict)
    """(type, region, name) -> "live" or "scheduled for deletion"."""
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    """(operation, region, URN) of every call that went through."""

    def call(self, op: str, resource: Resource, region: str | None = None) -> None:
        region = region or resource.provider_region or ""
        if region in self.unreachable:
            raise CloudError(f"{op} {resource.urn}: {region} is unreachable")
        self.calls.append((op, region, resource.urn))
        getattr(self, f"_{op}", lambda _r: None)(resource)

    def configure(self, provider: Resource) -> None:
        """A provider asks STS who it is (allowed_account_ids) in its STS region."""
        sts_region = provider.inputs.get("sts_region") or provider.inputs.get("region")
        self.call("configure", provider, sts_region)

    def _keys(self, resource: Resource) -> list[tuple[str, str, str]]:
        """The names it holds: in its region, and a global table's in every replica's."""
        argument = PHYSICAL_NAME.get(resource.type)
        name = resource.inputs.get(argument) if argument else None
        if not name:
            return []
        regions = [resource.provider_region or ""]
        if resource.type == TABLE:
            regions += [r["region_name"] for r in resource.inputs.get("replicas") or []]
        return [(resource.type, region, name) for region in regions]

    def _create(self, resource: Resource) -> None:
        keys = self._keys(resource)
        for key in keys:
            if key in self.names:
                raise CloudError(f"create {resource.urn}: {key[2]!r} is {self.names[key]}")
        self._update(resource)  # what an update would refuse, a create refuses too
        self.names.update(dict.fromkeys(keys, "live"))

    def _update(self, resource: Resource) -> None:
        inputs = resource.inputs
        stream = inputs.get("stream_view_type") if inputs.get("stream_enabled") else None
        if resource.type == TABLE and inputs.get("replicas") and stream != "NEW_AND_OLD_IMAGES":
            raise CloudError(
                f"{resource.urn}: ValidationException: a table with replicas replicates from "
                "its NEW_AND_OLD_IMAGES stream, which cannot be turned off or changed"
            )

    def _delete(self, resource: Resource) -> None:
        if resource.type == BUCKET and not resource.inputs.get("force_destroy"):
            # Every bucket holds objects by then: index versions, site pages.
            raise CloudError(f"delete {resource.urn}: BucketNotEmpty (no force_destroy)")
        protected = [resource.inputs, *(resource.inputs.get("replicas") or [])]
        if resource.type == TABLE and any(r.get("deletion_protection_enabled") for r in protected):
            raise CloudError(
                f"delete {resource.urn}: ValidationException: deletion protection is enabled"
            )
        window = resource.inputs.get("recovery_window_in_days")
        for key in self._keys(resource):
            if resource.type == SECRET and (DEFAULT_RECOVERY_DAYS if window is None else window):
                self.names[key] = "scheduled for deletion"  # the name stays taken
            else:
                self.names.pop(key, None)


def rejections(steps: list[Step], state: State) -> list[str]:
    """Steps the engine or AWS refuse, before any call is made."""
    members = {
        urn
        for urn, r in state.items()
        if r.type == REPLICATION_GROUP
        and (
            r.inputs.get("global_replication_group_id")
            or any(
                g.inputs.get("primary_replication_group_id") == r.outputs.get("id")
                for g in state.values()
                if g.type == GLOBAL_GROUP
            )
        )
    }
    refused = []
    for step in steps:
        if step.op in ("delete", "replace") and step.old is not None and step.old.protect:
            refused.append(f"{step.urn}: protected, Pulumi refuses to {step.op} it")
        resized = set(step.changed) & set(MEMBER_ONLY_VIA_DATASTORE)
        if step.op == "update" and step.urn in members and resized:
            refused.append(
                f"{step.urn}: InvalidParameterCombination: {sorted(resized)} of a member "
                "of a global cluster changes through the Global Datastore only"
            )
    return refused


def apply(
    steps: list[Step], state: State, cloud: Cloud, targets: Iterable[str] | None = None
) -> State:
    """`pulumi up [--target ...]`: apply the steps to the cloud, return the new state.

    Untargeted steps leave their resource as it was (a create is skipped).
    Raises CloudError at the first refusal, as the update would stop there.
    """
    if refused := rejections(steps, state):
        raise CloudError("\n".join(refused))
    chosen = None if targets is None else set(targets)
    result = copy.deepcopy(state)
    # The engine configures every provider of the stack, targeted or not.
    for provider in [
        s.resource for s in steps if s.resource.type.startswith("pulumi:providers:aws")
    ]:
        cloud.configure(provider)
    for step in steps:
        if step.op == "same" or (chosen is not None and step.urn not in chosen):
            continue
        if step.resource.custom:
            for op, resource in _calls(step):
                cloud.call(op, resource)
        if step.new is None:
            result.pop(step.urn, None)
        else:
            result[step.urn] = step.new
    return result


def _calls(step: Step) -> list[tuple[str, Resource]]:
    if step.op != "replace":
        return [(step.op, step.resource)]
    calls = [("create", step.new), ("delete", step.old)]  # create before delete, by default
    return calls[::-1] if step.new.delete_before_replace else calls


def destroy(state: State, cloud: Cloud) -> None:
    """`pulumi destroy`: dependents first; protected resources stop it."""
    for resource in reversed(list(state.values())):
        if resource.protect:
            raise CloudError(f"{resource.urn}: protected, Pulumi refuses to destroy it")
        if resource.custom:
            cloud.call("delete", resource)


def create(deployment: Deployment, cloud: Cloud) -> State:
    """The first `pulumi up` of a stack (or the next one after a destroy)."""
    return apply(plan({}, deployment), {}, cloud)
