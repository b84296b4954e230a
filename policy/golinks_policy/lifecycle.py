"""The second day (DESIGN.md section 7): what breaks after the first `pulumi up`, as policies.

- After a Datastore failover the provider reads the datastore's primary member
  back as the promoted one, and that argument forces replacement; node-type
  and engine-version changes sent to a member are rejected by AWS.
- Lasting stacks protect their data (the link table with deletion protection on
  every replica too); disposable ones must tear down and come back (versioned
  buckets need force_destroy, a secret's recovery window holds its fixed name, a
  table's deletion protection stops the destroy).
- A failover update must not need the region that is down.
"""

from __future__ import annotations

from .model import Resource, Stack, violation
from .store import link_tables, table_regions
from .types import BUCKET, FUNCTION, GLOBAL_GROUP, REPLICATION_GROUP, environment_of, purpose_of

SECRET = "aws:secretsmanager/secret:Secret"  # noqa: S105 - a type token
REPLICATION_CONFIG = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
AWS_PROVIDER = "pulumi:providers:aws"
#: STS for every AWS provider; the edge resources need this region anyway.
EDGE_REGION = "us-east-1"


def _index_buckets(d: Stack) -> list[Resource]:
    return [b for b in d.of_type(BUCKET) if "-index-" in str(b["bucket"])]


def _stateful(d: Stack) -> list[Resource]:
    """What a deletion would lose: the datastore, its members or the link table, the index,
    the secrets."""
    cache = d.of_type(GLOBAL_GROUP) + d.of_type(REPLICATION_GROUP)
    return cache + link_tables(d) + _index_buckets(d) + d.of_type(SECRET)


def _unprotected_replicas(table: Resource) -> list[str]:
    """The link table's regions whose replica AWS would let anyone delete."""
    replicas = [table.region] if not table["deletion_protection_enabled"] else []
    return replicas + [
        r.get("region_name")
        for r in table["replicas"] or []
        if not r.get("deletion_protection_enabled")
    ]


def lasting_stacks_protect_their_data(d: Stack) -> list[str]:
    """A stack that is not disposable protects its stateful resources and never empties them."""
    if d.facts.disposable:
        return []
    violations = [
        violation(r, "must be protected (protect=True) in a stack that is not disposable")
        for r in _stateful(d)
        if not r.protect
    ]
    violations += [
        violation(b, "force_destroy would delete every object version on a destroy")
        for b in _index_buckets(d)
        if b["force_destroy"]
    ]
    violations += [
        violation(s, "a deletion must keep a recovery window")
        for s in d.of_type(SECRET)
        if s["recovery_window_in_days"] == 0
    ]
    violations += [
        violation(t, f"deletion protection is off in {regions}")
        for t in link_tables(d)
        if (regions := _unprotected_replicas(t))
    ]
    return violations


def disposable_stacks_tear_down_cleanly(d: Stack) -> list[str]:
    """A disposable stack can be destroyed and created again at once, under the same names."""
    if not d.facts.disposable:
        return []
    violations = [
        violation(r, "is protected: a disposable stack could not be destroyed")
        for r in d.resources
        if r.protect
    ]
    violations += [
        violation(b, "a versioned bucket without force_destroy stops `pulumi destroy`")
        for b in d.of_type(BUCKET)
        if not b["force_destroy"]
    ]
    violations += [
        violation(s, "its fixed name stays taken for the recovery window: set it to 0")
        for s in d.of_type(SECRET)
        if s["recovery_window_in_days"] != 0
    ]
    for table in link_tables(d):
        protected = sorted(set(table_regions(table)) - set(_unprotected_replicas(table)))
        if protected:
            violations.append(
                violation(table, f"deletion protection in {protected} stops `pulumi destroy`")
            )
    return violations


def datastore_survives_refresh_and_resize(d: Stack) -> list[str]:
    """The datastore ignores the primary read back after a failover; resizes go through it."""
    violations = [
        violation(
            g,
            "must ignore changes to primary_replication_group_id (read back after a "
            "failover, it forces replacement)",
        )
        for g in d.of_type(GLOBAL_GROUP)
        if "primary_replication_group_id" not in g.ignore_changes
    ]
    for member in d.of_type(REPLICATION_GROUP):
        if member["global_replication_group_id"]:
            settings = [k for k in ("node_type", "engine_version") if member[k] is not None]
        else:  # the founding member: its own copies must never be sent
            settings = [
                k for k in ("node_type", "engine_version") if k not in member.ignore_changes
            ]
        if settings:
            violations.append(
                violation(
                    member,
                    f"{settings} would be sent to a member (AWS refuses): change "
                    "them through the Global Datastore",
                )
            )
    return violations


def failover_needs_only_reachable_regions(d: Stack) -> list[str]:
    """Nothing in a region has to change for writes to move elsewhere (docs/deploy.md)."""
    violations = [
        violation(f, "a reader that names the primary region changes on every failover")
        for f in d.of_type(FUNCTION)
        if purpose_of(f) != "sync" and "PRIMARY_REGION" in environment_of(f)
    ]
    violations += [
        violation(
            c,
            f"must be named after its source region {c.region}, so a failover "
            "creates the new one instead of moving (replacing) it",
        )
        for c in d.of_type(REPLICATION_CONFIG)
        if not c.name.endswith(f"-{c.region}")
    ]
    violations += [
        violation(
            p,
            f"must ask STS in {EDGE_REGION}: configured in its own region, it stops "
            "every update while that region is down",
        )
        for p in d.of_type(AWS_PROVIDER)
        if p["region"] != EDGE_REGION and p["sts_region"] != EDGE_REGION
    ]
    return violations
