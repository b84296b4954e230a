"""The DynamoDB store against its references: warm reads and the sync.

Every figure is measured on a local DynamoDB (a moto server, the engine
available here): its absolute times are moto's, a Python web server, far slower
than DynamoDB itself. The ratios compare clients and code paths on the same
engine. (Cold start: the cold_start suite; replication: the replication suite.)

- Warm read: the redirect handler with LINK_STORE=dynamodb (the lean signed
  client, pointer cached; event parsing, the response and its log line
  included) vs a bare boto3 `get_item` of the same item on the same local
  table, same process, interleaved blocks (target: p50 and p99 <= 1.0x).
- Sync: SYNC_LINKS links into an empty table vs boto3's `batch_writer` writing
  the same items, one round each, each into a fresh table. The sync writes
  exactly the items the reference writes, then reads every one back (the
  flip), so its target is <= 2.0x. Measured below the link_sync suite's
  1,000,000 because moto stores ~5,000-6,000 items/s: the two loads of a
  million alone would take ~10 minutes, longer than the rest of `make bench`
  together. Both write (and the sync reads back) in fixed-size batches, a cost
  per item, so the loads are scaled to 1,000,000 linearly; the ratio is
  measured.
- A 1% change, measured at CHANGE_LINKS: the sync scans the table to diff, and
  moto's Scan restarts every page from the table's start (its cost grows with
  the square of the table; DynamoDB's pages do not), so a 1% change of
  400,000 took five minutes and timed moto. The items a 1% change of 1,000,000
  links writes are planned at full size by the sync's own (pure) planner, from
  the table a full load leaves; the same planning at CHANGE_LINKS is checked
  against what the measured change wrote.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import boto3

from functions import redirect, region
from functions.links.dynamo_sync import LinkTable, Replica, TableState, plan_sync, sync_table
from functions.links.index import Index
from local.dynamo_replication import create_link_table
from local.servers import MotoServer, local_dynamodb_client, local_s3_env

from .link_sync import CHANGE_TIME, CHANGE_WRITES, LINKS, SYNC, dataset
from .publish_seen import patched_env
from .redirect import WARM, percentile, request
from .report import table
from .summary import at_most, note, record

REGION = "eu-west-1"
REQUESTS = 4000
BLOCK = 200
SYNC_LINKS = 400_000
CHANGE_LINKS = 50_000
SYNC_TARGET = 2.0
FAST_FLIP = {"settle_s": 0.0, "refresh_s": 0.0}


def run() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-dynamo-") as tmp:
        moto = MotoServer(Path(tmp) / "dynamodb", name="bench-dynamodb").start()
        try:
            client = local_dynamodb_client(moto.endpoint, REGION)
            warm(moto, client)
            sync(client)
        finally:
            moto.stop()


def _table(client) -> LinkTable:
    name = f"links-{uuid.uuid4().hex[:8]}"
    create_link_table(client, name)
    primary = Replica(REGION, client)
    return LinkTable(name, primary, (primary,))


def _interleaved(ours, reference) -> tuple[list[int], list[int]]:
    for _ in range(50):  # connect and warm both
        ours()
        reference()
    clock = time.perf_counter_ns
    mine, theirs = [], []
    for _ in range(REQUESTS // BLOCK):
        for _ in range(BLOCK):
            started = clock()
            ours()
            mine.append(clock() - started)
        for _ in range(BLOCK):
            started = clock()
            reference()
            theirs.append(clock() - started)
    return mine, theirs


def warm(moto: MotoServer, client) -> None:
    """The redirect handler on the DynamoDB store vs a bare boto3 get_item of the same item."""
    link_table = _table(client)
    _, index, _ = dataset(1000)
    sync_table(link_table, index, **FAST_FLIP)
    slug = index.links[0].slug
    event, key = request(f"/{slug}"), {"pk": {"S": slug}}
    env = {
        **local_s3_env(moto.endpoint),
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL_DYNAMODB": moto.endpoint,
        "LINK_STORE": "dynamodb",
        "LINK_TABLE": link_table.name,
    }
    statuses: Counter[int] = Counter()

    def ours() -> None:
        statuses[redirect.handler(event, None)["statusCode"]] += 1

    # moto is slower than DynamoDB: the handler's timeouts must not send it to its fallback.
    with (
        patched_env(env),
        _patched(region, DYNAMODB_READ_TIMEOUT_S=5, DYNAMODB_CONNECT_TIMEOUT_S=5),
        open(os.devnull, "w") as devnull,
        contextlib.redirect_stdout(devnull),
    ):
        region.forget()
        try:
            mine, reference = _interleaved(
                ours, lambda: client.get_item(TableName=link_table.name, Key=key)
            )
        finally:
            region.forget()
    if set(statuses) != {index.links[0].status}:
        raise RuntimeError(f"the handler did not answer every request from the table: {statuses}")
    rows = []
    for label, q in (("p50", 50), ("p99", 99)):
        a, b = percentile(mine, q) / 1e6, percentile(reference, q) / 1e6
        ratio, target, ok = at_most(a / b, 1.0)
        rows.append([label, f"{a:.3f}", f"{b:.3f}", f"{ratio:.2f}", f"{target} {_ok(ok)}"])
        record(
            f"{WARM} {label}",
            "dynamodb",
            f"handler {a:.3f} ms vs boto3 get_item {b:.3f} ms",
            ratio,
            target=target,
            ok=ok,
        )
    print(f"Warm redirect on moto: {REQUESTS:,} requests each, interleaved blocks of {BLOCK}")
    print(table(["", "handler ms", "boto3 get_item ms", "ratio", "target"], rows))


@contextlib.contextmanager
def _patched(module, **values):
    saved = {name: getattr(module, name) for name in values}
    for name, value in values.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)


def _ok(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def sync(client) -> None:
    _, index, _ = dataset(SYNC_LINKS)
    env = local_s3_env(client.meta.endpoint_url)
    resource = boto3.resource(
        "dynamodb",
        endpoint_url=client.meta.endpoint_url,
        region_name=REGION,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    reference_table = _table(client)
    started = time.perf_counter()
    with resource.Table(reference_table.name).batch_writer() as writer:
        for link in index.links:  # the same item a sync writes: key, entries, generation
            writer.put_item(Item={"pk": link.slug, "e": f"1 - {link.url}", "w": 1})
    reference = time.perf_counter() - started
    client.delete_table(TableName=reference_table.name)
    ours = _table(client)
    full = sync_table(ours, index, **FAST_FLIP)
    client.delete_table(TableName=ours.name)

    _, small, small_changed = dataset(CHANGE_LINKS)
    ours = _table(client)
    small_load = sync_table(ours, small, **FAST_FLIP)
    change = sync_table(ours, small_changed, **FAST_FLIP)
    client.delete_table(TableName=ours.name)
    plan = change.plan
    if (plan.written_items, change.pruned) != planned_change(small, small_changed):
        raise RuntimeError(f"the sync wrote {plan}, not what its planner says")

    _, million, million_changed = dataset(LINKS)
    written, pruned = planned_change(million, million_changed)
    scale = LINKS / SYNC_LINKS
    ratio, target, ok = at_most(full.seconds / reference, SYNC_TARGET)
    print(f"Sync on moto (one round each, fresh tables; scaled to {LINKS:,} linearly)")
    print(
        table(
            ["measure", "links", "seconds", "ratio", f"at {LINKS:,}", "written"],
            [
                [
                    "boto3 batch_writer (reference)",
                    f"{SYNC_LINKS:,}",
                    f"{reference:.1f}",
                    "1.00",
                    f"~{reference * scale:.0f}",
                    f"{SYNC_LINKS:,}",
                ],
                [
                    "sync_table into an empty table",
                    f"{SYNC_LINKS:,}",
                    f"{full.seconds:.1f}",
                    f"{ratio:.2f} ({target} {_ok(ok)})",
                    f"~{full.seconds * scale:.0f}",
                    f"{full.plan.written_items:,} (+ every item read back)",
                ],
                [
                    "1% change (vs its own full load)",
                    f"{CHANGE_LINKS:,}",
                    f"{change.seconds:.1f}",
                    f"{change.seconds / small_load.seconds:.2f}",
                    f"{written:,} + {pruned:,} pruned (planned)",
                    f"{plan.written_items:,} ({len(plan.added):,} added, {len(plan.changed):,} "
                    f"changed, {len(plan.removed):,} removed) + {change.pruned:,} pruned",
                ],
            ],
        )
    )
    record(
        SYNC,
        "dynamodb",
        f"~{full.seconds * scale:.0f} s vs batch_writer ~{reference * scale:.0f} s "
        f"(measured at {SYNC_LINKS // 1000}k: {full.seconds:.0f} s vs {reference:.0f} s)",
        ratio,
        target=target,
        ok=ok,
    )
    changed_million = _changed_links(million, million_changed)
    record(
        CHANGE_WRITES,
        "dynamodb",
        f"{written:,} items (+ {pruned:,} pruned) for {changed_million:,} changed links",
        written / changed_million,
        target="only what changed",
        ok=written == changed_million,
    )
    record(
        CHANGE_TIME,
        "dynamodb",
        f"{change.seconds:.1f} s at {CHANGE_LINKS // 1000}k (scans the table to diff) "
        f"vs its full load {small_load.seconds:.1f} s",
        change.seconds / small_load.seconds,
    )
    note(
        f"DynamoDB sync on moto: full loads measured at {SYNC_LINKS:,} links and scaled "
        f"x{scale:g} (batches of fixed size: a cost per item); the 1% change measured at "
        f"{CHANGE_LINKS:,} (moto's Scan restarts every page from the table's start, so its "
        f"cost grows with the square of the size) and its items planned at {LINKS:,} by the "
        "sync's own planner, checked against the measured change."
    )


def planned_change(index: Index, changed: Index) -> tuple[int, int]:
    """(items written, items pruned after) when `changed` follows a full load of `index`."""
    now = time.time()
    first = plan_sync(TableState(), index, now=now)
    loaded = TableState(
        generation=first.generation,
        version=first.version,
        count=first.count,
        items={slug: (entries, first.generation) for slug, entries in first.writes},
    )
    plan = plan_sync(loaded, changed, now=now)
    # Pruning drops every entry the new generation closed: changed and removed links.
    pruned = sum(any(e.end is not None for e in entries) for _, entries in plan.writes)
    return plan.written_items, pruned


def _changed_links(index: Index, changed: Index) -> int:
    before = {link.slug: link for link in index.links}
    after = {link.slug: link for link in changed.links}
    return sum(before.get(slug) != after.get(slug) for slug in before.keys() | after.keys())
