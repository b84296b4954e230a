"""Applying an index to Redis: only the difference, in one transaction.

Layout: one string key per link (`link:<slug>` -> `encode_value(link)`), so a
redirect is one GET, plus the `links:meta` hash (version, count, synced_at).

Atomicity: the whole difference and the new metadata go in one MULTI/EXEC.
Redis runs a transaction as a unit and replicates it as a unit, so neither the
primary nor any replica ever serves a mix of two versions. If the writer dies
before EXEC, Redis discards the queued commands when the connection drops: the
old index stays whole and the next run completes the change. WATCH on the
metadata key makes two concurrent syncs safe: the loser's EXEC is refused and
it re-reads and re-plans.

Speed: commands are written as raw RESP in large chunks (MSET batches) on a
redis-py connection. Through redis-py's pipeline, packing each SET costs ~4.5x
`redis-cli --pipe` for a million links; packing our own batches brings the
full load to about the cost of `redis-cli --pipe` (see `make bench`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import redis

from .index import Index, LinkDiff
from .model import (
    GONE_RETENTION_SECONDS,
    LINK_KEY_PREFIX,
    META_KEY,
    Link,
    encode_value,
    sequencer_order,
    value_text,
)

BATCH = 1000
SCAN_COUNT = 10_000
WRITE_CHUNK_BYTES = 1 << 20
MAX_ATTEMPTS = 5

#: progress(stage, advance, total): stage is "read" or "write"; total is known
#: (>0) on the first call of a stage. The CLI turns it into a progress bar.
Progress = Callable[[str, int, int], None]


class SyncConflict(RuntimeError):
    """Other writers kept changing the index; nothing was applied."""


@dataclass(frozen=True)
class Plan:
    """What applying `version` to Redis changes, in slug order."""

    version: str
    count: int
    previous_version: str | None
    added: tuple[Link, ...] = ()
    changed: tuple[Link, ...] = ()
    removed: tuple[str, ...] = ()  # slugs
    sequencer: str | None = None
    stale: bool = False  # Redis already holds a later publish: write nothing

    @property
    def upserts(self) -> tuple[Link, ...]:
        return self.added + self.changed

    @property
    def is_noop(self) -> bool:
        unchanged = self.previous_version == self.version and not (self.upserts or self.removed)
        return self.stale or unchanged

    def as_diff(self) -> LinkDiff:
        """The plan as a link diff (Redis does not say what a changed link was)."""
        return LinkDiff(
            self.previous_version,
            self.version,
            self.added,
            tuple((None, link) for link in self.changed),
            self.removed,
        )

    @property
    def written_keys(self) -> int:
        return len(self.added) + len(self.changed) + len(self.removed)


@dataclass(frozen=True)
class SyncReport:
    plan: Plan
    applied: bool
    seconds: float


def plan_sync(client: redis.Redis, index: Index, *, now: float | None = None) -> Plan:
    """The difference between `index` and what Redis holds, without writing."""
    conn = client.connection_pool.get_connection()
    try:
        return _plan(conn, index, now if now is not None else time.time(), None, None)
    finally:
        client.connection_pool.release(conn)


def sync_index(
    client: redis.Redis,
    index: Index,
    *,
    now: float | None = None,
    progress: Progress | None = None,
    sequencer: str | None = None,
) -> SyncReport:
    """Make Redis serve exactly `index`, atomically, writing only what differs.

    `sequencer` orders publishes (S3's event sequencer for the index object):
    when Redis already recorded a later or equal one, nothing is written, so a
    redelivered or out-of-order event never brings back an older index.
    """
    started = time.perf_counter()
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        for _ in range(MAX_ATTEMPTS):
            _call(conn, "WATCH", META_KEY)
            plan = _plan(conn, index, time.time() if now is None else now, progress, sequencer)
            if plan.is_noop:
                _call(conn, "UNWATCH")
                return SyncReport(plan, applied=False, seconds=time.perf_counter() - started)
            if _apply(conn, plan, progress):
                return SyncReport(plan, applied=True, seconds=time.perf_counter() - started)
        raise SyncConflict(f"the index changed under this sync {MAX_ATTEMPTS} times; try again")
    except BaseException:
        # A half-sent transaction must die with its connection, never be reused.
        conn.disconnect()
        raise
    finally:
        pool.release(conn)


def _plan(conn, index: Index, now: float, progress: Progress | None, sequencer: str | None) -> Plan:
    meta = _pairs(_call(conn, "HGETALL", META_KEY))
    previous = meta.get(b"version")
    previous = previous.decode() if previous else None
    recorded = meta.get(b"sequencer")
    if sequencer and recorded and sequencer_order(recorded.decode()) >= sequencer_order(sequencer):
        return Plan(index.version, index.count, previous, sequencer=sequencer, stale=True)
    existing = _scan_link_keys(conn, progress)
    # Links whose gone-period is over are left to (or removed from) Redis's TTL.
    alive = [link for link in index.links if link.expires is None or _deadline(link) > now]
    added, changed, removed = alive, [], []
    if existing:  # an empty Redis (a first load) needs no comparison
        # Positions rather than (key, link) pairs: a million small tuples would
        # keep the garbage collector busy for seconds.
        keys = [LINK_KEY_PREFIX + link.slug for link in alive]
        present = [i for i, key in enumerate(keys) if key in existing]
        stored: set[int] = set()
        for i, value in zip(present, _mget(conn, [keys[i] for i in present]), strict=True):
            if value is not None:
                stored.add(i)
                if value != encode_value(alive[i]):
                    changed.append(alive[i])
        added = [link for i, link in enumerate(alive) if i not in stored]
        removed = sorted(key[len(LINK_KEY_PREFIX) :] for key in existing.difference(keys))
    return Plan(
        version=index.version,
        count=index.count,
        previous_version=previous,
        added=tuple(added),
        changed=tuple(changed),
        removed=tuple(removed),
        sequencer=sequencer,
    )


def _apply(conn, plan: Plan, progress: Progress | None) -> bool:
    """Send the plan as one transaction; False when WATCH saw another writer."""
    if progress:
        progress("write", 0, plan.written_keys)
    commands = 0
    for chunk, keys, count in _chunks(_transaction(plan)):
        conn.send_packed_command([chunk], check_health=False)
        commands += count
        if progress:
            progress("write", keys, plan.written_keys)
    refused: list[redis.ResponseError] = []
    for _ in range(commands - 1):  # every reply but EXEC's
        try:
            conn.read_response()
        except redis.ResponseError as exc:
            refused.append(exc)
    try:
        result = conn.read_response()
    except redis.ResponseError as exc:
        # EXECABORT: the transaction was discarded; the first refusal says why.
        raise (refused[0] if refused else exc) from exc
    return result is not None


def _transaction(plan: Plan) -> Iterator[tuple[str, int]]:
    """RESP text of MULTI, the writes, the metadata and EXEC, with keys per piece."""
    yield _resp("MULTI"), 0
    plain = [link for link in plan.upserts if link.expires is None]
    prefix = len(LINK_KEY_PREFIX)
    for start in range(0, len(plain), BATCH):
        batch = plain[start : start + BATCH]
        parts = [f"*{1 + 2 * len(batch)}\r\n$4\r\nMSET\r\n"]
        parts += [  # the hottest loop of a full load: one f-string per link
            f"${prefix + len(link.slug)}\r\n{LINK_KEY_PREFIX}{link.slug}\r\n"
            f"${len(value)}\r\n{value}\r\n"
            for link in batch
            for value in (value_text(link),)
        ]
        yield "".join(parts), len(batch)
    for link in plan.upserts:
        if link.expires is not None:
            key, deadline = LINK_KEY_PREFIX + link.slug, str(_deadline(link))
            yield _resp("SET", key, value_text(link), "EXAT", deadline), 1
    for start in range(0, len(plan.removed), BATCH):
        batch = [LINK_KEY_PREFIX + slug for slug in plan.removed[start : start + BATCH]]
        yield _resp("UNLINK", *batch), len(batch)
    meta = ["version", plan.version, "count", str(plan.count), "synced_at", str(int(time.time()))]
    if plan.sequencer:
        meta += ["sequencer", plan.sequencer]
    yield _resp("HSET", META_KEY, *meta), 0
    yield _resp("EXEC"), 0


def _deadline(link: Link) -> int:
    """When Redis drops an expiring link's key (it answers 410 until then)."""
    return link.expires + GONE_RETENTION_SECONDS


def _chunks(commands: Iterator[tuple[str, int]]) -> Iterator[tuple[bytes, int, int]]:
    """Commands joined into writes of about WRITE_CHUNK_BYTES: (bytes, keys, commands)."""
    parts: list[str] = []
    size = keys = 0
    for text, count in commands:
        parts.append(text)
        size += len(text)
        keys += count
        if size >= WRITE_CHUNK_BYTES:
            yield "".join(parts).encode(), keys, len(parts)
            parts, size, keys = [], 0, 0
    if parts:
        yield "".join(parts).encode(), keys, len(parts)


def _resp(*args: str) -> str:
    return f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)


def _call(conn, *args: str):
    conn.send_command(*args)
    return conn.read_response()


def _pairs(flat: Sequence[bytes] | dict) -> dict[bytes, bytes]:
    if isinstance(flat, dict):
        return flat
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _scan_link_keys(conn, progress: Progress | None) -> set[str]:
    keys: set[str] = set()
    cursor = b"0"
    total = int(_call(conn, "DBSIZE"))
    if progress:
        progress("read", 0, max(total, 1))
    while True:
        cursor, batch = _call(
            conn, "SCAN", cursor, "MATCH", LINK_KEY_PREFIX + "*", "COUNT", str(SCAN_COUNT)
        )
        keys.update(key.decode() for key in batch)
        if progress:
            progress("read", len(batch), total)
        if cursor in (b"0", 0):
            return keys


def _mget(conn, keys: list[str]) -> list[bytes | None]:
    batches = [keys[i : i + SCAN_COUNT] for i in range(0, len(keys), SCAN_COUNT)]
    if not batches:
        return []
    conn.send_packed_command([_resp("MGET", *batch).encode() for batch in batches])
    values: list[bytes | None] = []
    for _ in batches:
        values.extend(conn.read_response())
    return values
