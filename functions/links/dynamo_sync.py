"""Applying an index to a DynamoDB global table: only the changed items, then each region's flip.

Global tables give no transaction across regions and no order between items,
so atomicity comes from generations instead (layout in dynamo_items, the
argument in docs/dynamodb-store.md). One run, in the primary region only:

1. Take the writer's lease on `_meta` (a conditional write; it lasts as long
   as the sync function may run, so a killed run cannot come back after it).
2. Read what the table holds (a strongly consistent Scan of the primary).
3. Plan generation N = last written + 1: for each changed, added or removed
   slug, close its current entry at N and/or open a new one; unchanged links
   are not written at all. A re-run after a killed one re-plans the same N,
   dropping whatever the killed run wrote for it.
4. Write those items (BatchWriteItem, in parallel), then `_meta` (N written).
5. Per region: read back, strongly consistent in that region, every item
   written since the generation the region serves; once all are there (and a
   settle time for the region's own eventually consistent reads has passed),
   move that region's pointer to N.
6. Once every region's readers follow N, drop entries no region needs (the
   pruning floor) and delete items left with none.

Anything interrupted leaves every region on a whole generation; the next run
(or the same publish retried) completes the steps it finds undone.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from botocore.exceptions import BotoCoreError, ClientError

from functions.dynamo_store import POINTER_REFRESH_S

from .dynamo_items import (
    ENTRIES,
    KEY,
    META_KEY,
    REGION_KEY_PREFIX,
    WRITTEN,
    Entry,
    format_entries,
    parse_entries,
    region_key,
)
from .index import Index
from .model import GONE_RETENTION_SECONDS, sequencer_order, value_text

WRITE_BATCH = 25  # BatchWriteItem's limit
READ_BATCH = 100  # BatchGetItem's limit
WRITERS = 8
#: The sync function's timeout: a run never outlives its lease.
LEASE_SECONDS = 900
#: DynamoDB's eventually consistent reads reflect a write "usually within a
#: second" of it being readable strongly consistently in that region.
SETTLE_S = 1.0
#: How long one run waits for regions to receive a generation before leaving
#: their flip to the next run.
FLIP_TIMEOUT_S = 60.0
POLL_S = 0.02

Progress = Callable[[str, int, int], None]


class SyncConflict(RuntimeError):
    """Another sync holds the table's writer lease; nothing was written."""


@dataclass(frozen=True)
class Replica:
    """One region's replica of the table, through a boto3 DynamoDB client for that region."""

    region: str
    client: object


@dataclass(frozen=True)
class LinkTable:
    """The global table: its name, the writing (primary) replica and every replica."""

    name: str
    primary: Replica
    replicas: tuple[Replica, ...]


@dataclass
class TableState:
    """What the primary replica holds."""

    generation: int = 0  # the latest generation whose items are all written
    version: str | None = None
    count: int = 0
    floor: int = 0  # entries ending at or before this are needed by no region
    sequencer: str | None = None
    pointers: dict[str, int] = field(default_factory=dict)
    items: dict[str, tuple[tuple[Entry, ...], int]] = field(default_factory=dict)


@dataclass(frozen=True)
class DynamoPlan:
    """What applying `version` as `generation` writes, in slug order."""

    version: str
    count: int
    generation: int
    previous_version: str | None
    previous_generation: int
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    writes: tuple[tuple[str, tuple[Entry, ...]], ...] = ()  # no entries: delete the item
    sequencer: str | None = None
    stale: bool = False  # the table already recorded a later publish

    @property
    def written_items(self) -> int:
        return len(self.writes)


@dataclass(frozen=True)
class DynamoSyncReport:
    plan: DynamoPlan
    serving: dict[str, int]  # region -> generation its pointer names after this run
    pruned: int
    seconds: float
    unreachable: dict[str, str] = field(default_factory=dict)  # region -> its last read error

    @property
    def pending_regions(self) -> tuple[str, ...]:
        return tuple(r for r, g in sorted(self.serving.items()) if g < self.plan.generation)


def read_state(table: LinkTable) -> TableState:
    """The primary replica's metadata, pointers and link items (strongly consistent)."""
    state = TableState()
    client = table.primary.client
    pages = client.get_paginator("scan").paginate(TableName=table.name, ConsistentRead=True)
    for page in pages:
        for item in page["Items"]:
            key = item[KEY]["S"]
            if key == META_KEY:
                _read_meta(state, item)
            elif key.startswith(REGION_KEY_PREFIX):
                state.pointers[key[len(REGION_KEY_PREFIX) :]] = int(item["g"]["N"])
            else:
                state.items[key] = (parse_entries(item[ENTRIES]["S"]), int(item[WRITTEN]["N"]))
    return state


def _read_meta(state: TableState, item: dict) -> None:
    state.generation = int(item.get("g", {}).get("N", 0))
    state.version = item.get("version", {}).get("S")
    state.count = int(item.get("count", {}).get("N", 0))
    state.floor = int(item.get("floor", {}).get("N", 0))
    state.sequencer = item.get("sequencer", {}).get("S")


def plan_sync(
    state: TableState, index: Index, *, now: float, sequencer: str | None = None
) -> DynamoPlan:
    """The items applying `index` writes, given what the table holds (pure)."""
    current = state.generation
    base = DynamoPlan(
        version=index.version,
        count=index.count,
        generation=current,
        previous_version=state.version,
        previous_generation=current,
        sequencer=sequencer,
    )
    recorded = state.sequencer
    # An equal sequencer is the same publish retried: it goes on to flip what is left.
    if sequencer and recorded and sequencer_order(recorded) > sequencer_order(sequencer):
        return replace(base, stale=True)
    if current and state.version == index.version:
        # Written already: only prune. Links whose gone-period ended since then
        # stay as they are; readers answer 404 for them by their expiry.
        writes = [
            (slug, kept)
            for slug, (entries, _) in sorted(state.items.items())
            if (kept := _pruned(entries, state.floor)) != entries
        ]
        return replace(base, writes=tuple(writes))
    target = current + 1
    # Links whose gone-period is over are not published (like Redis's TTL).
    wanted = {
        link.slug: value_text(link)
        for link in index.links
        if link.expires is None or link.expires + GONE_RETENTION_SECONDS > now
    }
    added, changed, removed, writes = [], [], [], []
    for slug in sorted(wanted.keys() | state.items.keys()):
        stored = state.items.get(slug, ((), 0))[0]
        entries = _as_of(stored, current, state.floor)
        live = entries[-1] if entries and entries[-1].end is None else None
        value = wanted.get(slug)
        if live and live.value == value:
            pass
        elif live and value:
            changed.append(slug)
            entries = [*entries[:-1], replace(live, end=target), Entry(target, None, value)]
        elif live:
            removed.append(slug)
            entries = [*entries[:-1], replace(live, end=target)]
        elif value:
            added.append(slug)
            entries = [*entries, Entry(target, None, value)]
        if tuple(entries) != stored:
            writes.append((slug, tuple(entries)))
    return replace(
        base,
        generation=target,
        added=tuple(added),
        changed=tuple(changed),
        removed=tuple(removed),
        writes=tuple(writes),
    )


def _as_of(entries: tuple[Entry, ...], generation: int, floor: int) -> list[Entry]:
    """An item's entries as generation `generation` left them, minus what no region needs.

    Entries a killed run wrote for a later generation go; the entry that
    covered `generation` is open again, whatever the killed run did to it.
    """
    return [
        replace(entry, end=None) if entry.end is not None and entry.end > generation else entry
        for entry in _pruned(entries, floor)
        if entry.start <= generation
    ]


def _pruned(entries: tuple[Entry, ...], floor: int) -> tuple[Entry, ...]:
    return tuple(e for e in entries if e.end is None or e.end > floor)


def sync_table(
    table: LinkTable,
    index: Index,
    *,
    now: float | None = None,
    sequencer: str | None = None,
    progress: Progress | None = None,
    lease_seconds: float = LEASE_SECONDS,
    flip_timeout: float = FLIP_TIMEOUT_S,
    settle_s: float = SETTLE_S,
    refresh_s: float = POINTER_REFRESH_S,
) -> DynamoSyncReport:
    """Make every region serve exactly `index`, writing only the items that change.

    Returns when every region serves it, or after `flip_timeout` with the
    regions still pending named in the report (the next run flips them).
    """
    started = time.perf_counter()
    run = uuid.uuid4().hex
    _take_lease(table, run, lease_seconds)
    try:
        state = read_state(table)
        plan = plan_sync(state, index, now=time.time() if now is None else now, sequencer=sequencer)
        serving, pruned, unreachable = dict(state.pointers), 0, {}
        if not plan.stale:
            _write(table, plan.writes, plan.generation, progress)
            for slug, entries in plan.writes:
                if entries:
                    state.items[slug] = (entries, plan.generation)
                else:
                    state.items.pop(slug, None)
            if (state.generation, state.version) != (plan.generation, plan.version):
                _put_meta(table, run, plan)
            serving = _flip(table, state, plan, flip_timeout, settle_s, unreachable=unreachable)
            if all(serving.get(r.region, 0) >= plan.generation for r in table.replicas):
                wait_s = settle_s + refresh_s
                pruned = _prune(
                    table, run, state, plan.generation, wait_s=wait_s, timeout=flip_timeout
                )
    finally:
        # A failed run hands the table over at once; only a killed one makes the next wait.
        _release_lease(table, run)
    return DynamoSyncReport(plan, serving, pruned, time.perf_counter() - started, unreachable)


def _take_lease(table: LinkTable, run: str, lease_seconds: float) -> None:
    now = time.time()
    try:
        table.primary.client.update_item(
            TableName=table.name,
            Key={KEY: {"S": META_KEY}},
            UpdateExpression="SET lease = :run, lease_until = :until",
            ConditionExpression="attribute_not_exists(lease_until) OR lease_until < :now",
            ExpressionAttributeValues={
                ":run": {"S": run},
                ":until": {"N": f"{now + lease_seconds:.3f}"},
                ":now": {"N": f"{now:.3f}"},
            },
        )
    except table.primary.client.exceptions.ConditionalCheckFailedException:
        raise SyncConflict(
            "another sync is writing the link table; retry when it has finished"
        ) from None


def _release_lease(table: LinkTable, run: str) -> None:
    client = table.primary.client
    # When the lease ran out, another run may hold it now: leave that one be.
    with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
        client.update_item(
            TableName=table.name,
            Key={KEY: {"S": META_KEY}},
            UpdateExpression="REMOVE lease, lease_until",
            ConditionExpression="lease = :run",
            ExpressionAttributeValues={":run": {"S": run}},
        )


def _put_meta(table: LinkTable, run: str, plan: DynamoPlan) -> None:
    values = {
        ":g": {"N": str(plan.generation)},
        ":version": {"S": plan.version},
        ":count": {"N": str(plan.count)},
        ":at": {"N": str(int(time.time()))},
        ":run": {"S": run},
    }
    update = "SET g = :g, version = :version, #count = :count, written_at = :at"
    if plan.sequencer:
        values[":sequencer"] = {"S": plan.sequencer}
        update += ", sequencer = :sequencer"
    _update_meta(table, update, values)


def _update_meta(table: LinkTable, update: str, values: dict) -> None:
    """Update `_meta` only while this run holds the lease (values carry :run)."""
    client = table.primary.client
    try:
        client.update_item(
            TableName=table.name,
            Key={KEY: {"S": META_KEY}},
            UpdateExpression=update,
            ConditionExpression="lease = :run",
            ExpressionAttributeValues=values,
            **({"ExpressionAttributeNames": {"#count": "count"}} if "#count" in update else {}),
        )
    except client.exceptions.ConditionalCheckFailedException:
        raise SyncConflict("this sync's lease ran out; another run took over") from None


def _write(
    table: LinkTable,
    writes: Iterable[tuple[str, tuple[Entry, ...]]],
    generation: int,
    progress: Progress | None,
) -> None:
    requests = [_write_request(slug, entries, generation) for slug, entries in writes]
    if progress:
        progress("write", 0, len(requests))
    batches = [requests[i : i + WRITE_BATCH] for i in range(0, len(requests), WRITE_BATCH)]
    if not batches:
        return
    with ThreadPoolExecutor(WRITERS) as pool:
        for written in pool.map(lambda batch: _write_batch(table, batch), batches):
            if progress:
                progress("write", written, len(requests))


def _write_request(slug: str, entries: tuple[Entry, ...], generation: int) -> dict:
    if not entries:
        return {"DeleteRequest": {"Key": {KEY: {"S": slug}}}}
    return {
        "PutRequest": {
            "Item": {
                KEY: {"S": slug},
                ENTRIES: {"S": format_entries(entries)},
                WRITTEN: {"N": str(generation)},
            }
        }
    }


def _write_batch(table: LinkTable, batch: list[dict]) -> int:
    _until_processed(table.primary.client.batch_write_item, {table.name: batch}, "UnprocessedItems")
    return len(batch)


def _until_processed(call, request: dict, leftover: str, on_answer=None) -> None:
    """Send a batch request until DynamoDB has processed all of it, backing off as it asks."""
    delay = 0.05
    while request:
        answer = call(RequestItems=request)
        if on_answer:
            on_answer(answer)
        request = answer.get(leftover) or {}
        if request:  # throttled
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def _flip(
    table: LinkTable,
    state: TableState,
    plan: DynamoPlan,
    timeout: float,
    settle_s: float,
    *,
    unreachable: dict[str, str],
) -> dict[str, int]:
    """Move each region's pointer to the plan's generation once the region holds all of it.

    A region whose replica cannot be read is asked again until the timeout, like
    one still receiving items; its last error is kept in `unreachable`.
    """
    target = plan.generation
    serving = {r.region: state.pointers.get(r.region, 0) for r in table.replicas}
    waiting = {
        r.region: (r, {slug: w for slug, (_, w) in state.items.items() if w > serving[r.region]})
        for r in table.replicas
        if serving[r.region] < target
    }
    complete_at: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while waiting:
        for region, (replica, missing) in list(waiting.items()):
            if region not in complete_at:
                try:
                    found = _generations(table, replica, list(missing))
                except (BotoCoreError, ClientError) as exc:
                    unreachable[region] = str(exc)
                    found = {}
                else:
                    unreachable.pop(region, None)
                for slug, written in found.items():
                    if written >= missing[slug]:
                        del missing[slug]
                if not missing:
                    complete_at[region] = time.monotonic()
            if region in complete_at and time.monotonic() >= complete_at[region] + settle_s:
                _put_pointer(table, region, plan)
                serving[region] = target
                del waiting[region]
        if waiting:
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL_S)
    return serving


def _generations(table: LinkTable, replica: Replica, slugs: list[str]) -> dict[str, int]:
    """The generation that last wrote each slug's item in `replica` (absent items left out).

    Batches are read in parallel: against DynamoDB each is a network round trip,
    and a first load reads back every item in every region.
    """
    batches = [slugs[i : i + READ_BATCH] for i in range(0, len(slugs), READ_BATCH)]
    found: dict[str, int] = {}
    if len(batches) == 1:
        found.update(_read_back(table, replica, batches[0]))
    elif batches:
        with ThreadPoolExecutor(WRITERS) as pool:
            for part in pool.map(lambda batch: _read_back(table, replica, batch), batches):
                found.update(part)
    return found


def _read_back(table: LinkTable, replica: Replica, slugs: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    request = {
        table.name: {
            "Keys": [{KEY: {"S": slug}} for slug in slugs],
            "ConsistentRead": True,
            "ProjectionExpression": f"{KEY}, {WRITTEN}",
        }
    }

    def record(answer: dict) -> None:
        for item in answer["Responses"].get(table.name, []):
            found[item[KEY]["S"]] = int(item[WRITTEN]["N"])

    _until_processed(replica.client.batch_get_item, request, "UnprocessedKeys", record)
    return found


def _put_pointer(table: LinkTable, region: str, plan: DynamoPlan) -> None:
    client = table.primary.client
    # A concurrent retry may have moved it already; pointers never move back.
    with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
        client.put_item(
            TableName=table.name,
            Item={
                KEY: {"S": region_key(region)},
                "g": {"N": str(plan.generation)},
                "version": {"S": plan.version},
                "count": {"N": str(plan.count)},
                "at": {"N": str(int(time.time()))},
            },
            ConditionExpression="attribute_not_exists(g) OR g < :g",
            ExpressionAttributeValues={":g": {"N": str(plan.generation)}},
        )


def _prune(
    table: LinkTable, run: str, state: TableState, generation: int, *, wait_s: float, timeout: float
) -> int:
    """Drop entries older than `generation` once every region's readers follow it.

    The pointers were written in the primary; each region follows its own
    only once that item has replicated there and its containers have re-read
    it (POINTER_REFRESH_S), so wait for both before removing what the previous
    generation needed.
    """
    if state.floor >= generation:
        return 0
    deadline = time.monotonic() + timeout
    for replica in table.replicas:
        while _pointer_in(table, replica) < generation:
            if time.monotonic() >= deadline:
                return 0
            time.sleep(POLL_S)
    time.sleep(wait_s)
    _update_meta(
        table, "SET floor = :floor", {":floor": {"N": str(generation)}, ":run": {"S": run}}
    )
    writes = [
        (slug, kept)
        for slug, (entries, _) in sorted(state.items.items())
        if (kept := _pruned(entries, generation)) != entries
    ]
    _write(table, writes, generation, None)
    return len(writes)


def _pointer_in(table: LinkTable, replica: Replica) -> int:
    item = replica.client.get_item(
        TableName=table.name, Key={KEY: {"S": region_key(replica.region)}}, ConsistentRead=True
    ).get("Item")
    return int(item["g"]["N"]) if item else 0
