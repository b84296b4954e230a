"""Applying the index to a real Redis primary with a real replica."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from functions.links.index import build_index
from functions.links.model import (
    GONE_RETENTION_SECONDS,
    LINK_KEY_PREFIX,
    META_KEY,
    Link,
    encode_value,
)
from functions.links.redis_sync import plan_sync, sync_index
from local.servers import wait_until

REPO = Path(__file__).resolve().parents[2]


def make_links(count: int, salt: str = "") -> list[Link]:
    return [Link(f"l{i}", f"https://example.com/{salt}{i}") for i in range(count)]


def served(client: redis.Redis) -> dict[str, bytes]:
    keys = sorted(client.scan_iter(match=LINK_KEY_PREFIX + "*", count=10_000))
    return dict(zip((k.decode() for k in keys), client.mget(keys), strict=True)) if keys else {}


def expected(links: list[Link]) -> dict[str, bytes]:
    return {LINK_KEY_PREFIX + link.slug: encode_value(link) for link in links}


class KeyspaceEvents:
    """Every key the server reports as written (keyspace notifications), in the background."""

    def __init__(self, client: redis.Redis):
        client.config_set("notify-keyspace-events", "KA")
        self.pubsub = client.pubsub()
        self.pubsub.psubscribe("__keyspace@0__:*")
        self.pubsub.get_message(timeout=1)  # subscription confirmation
        self.keys: set[str] = set()

    def drain(self) -> set[str]:
        while message := self.pubsub.get_message(timeout=0.2):
            self.keys.add(message["channel"].decode().split(":", 1)[1])
        return self.keys

    def close(self) -> None:
        self.pubsub.close()


def test_first_sync_loads_the_index_and_records_version_and_count(redis_replicated):
    primary, replica = redis_replicated
    client = primary.client()
    links = make_links(500)
    index = build_index(links)

    report = sync_index(client, index)

    assert report.applied
    assert len(report.plan.added) == 500 and report.plan.previous_version is None
    assert served(client) == expected(links)
    meta = client.hgetall(META_KEY)
    assert meta[b"version"] == index.version.encode() and meta[b"count"] == b"500"
    replica.wait_in_sync()
    assert served(replica.client()) == expected(links)


def test_a_rerun_writes_nothing(redis_primary):
    client = redis_primary.client()
    index = build_index(make_links(200))
    sync_index(client, index)
    events = KeyspaceEvents(client)

    report = sync_index(client, index)

    assert not report.applied and report.plan.is_noop and report.plan.written_keys == 0
    assert events.drain() == set()
    events.close()


def test_a_one_percent_change_writes_only_the_changed_keys(redis_primary):
    client = redis_primary.client()
    links = make_links(10_000)
    sync_index(client, build_index(links))
    changed = links.copy()
    for i in range(0, 10_000, 300):  # 34 changed targets
        changed[i] = Link(links[i].slug, links[i].url + "?v=2")
    for i in range(1, 10_000, 300)[:33]:  # 33 removed
        changed[i] = None
    changed = [link for link in changed if link] + make_links(10_033)[10_000:]  # 33 added
    events = KeyspaceEvents(client)

    report = sync_index(client, build_index(changed))

    plan = report.plan
    assert (len(plan.changed), len(plan.removed), len(plan.added)) == (34, 33, 33)
    slugs = [link.slug for link in plan.upserts] + list(plan.removed)
    written = {LINK_KEY_PREFIX + slug for slug in slugs}
    assert events.drain() == written | {META_KEY}
    assert served(client) == expected(changed)
    events.close()


def test_expiring_links_get_a_ttl_and_long_gone_ones_are_left_to_redis(redis_primary):
    client = redis_primary.client()
    now = int(time.time())
    soon = Link("soon", "https://example.com/soon", expires=now + 3600)
    gone_long_ago = Link("old", "https://example.com/old", expires=now - GONE_RETENTION_SECONDS - 1)
    just_expired = Link("just", "https://example.com/just", expires=now - 60)

    sync_index(client, build_index([soon, gone_long_ago, just_expired, *make_links(3)]))

    assert abs(client.ttl("link:soon") - (3600 + GONE_RETENTION_SECONDS)) <= 5
    assert 0 < client.ttl("link:just") <= GONE_RETENTION_SECONDS  # answers 410 until then
    assert client.ttl("link:l0") == -1  # no expiry
    assert not client.exists("link:old")
    # A link whose retention ends after it was synced is removed by Redis itself, and
    # the next sync does not bring it back or count it as a change.
    client.pexpire("link:soon", 1)
    wait_until(lambda: not client.exists("link:soon"), 2, "Redis to expire link:soon")
    later = plan_sync(
        client,
        build_index([soon, gone_long_ago, just_expired, *make_links(3)]),
        now=now + 3600 + GONE_RETENTION_SECONDS + 1,
    )
    assert later.added == () and later.changed == ()


def test_the_replica_only_ever_sees_whole_versions(redis_replicated):
    primary, replica = redis_replicated
    old_links, new_links = make_links(60_000, "old/"), make_links(60_000, "new/")
    old, new = build_index(old_links), build_index(new_links)
    sync_index(primary.client(), old)
    replica.wait_in_sync()
    sample = [f"link:l{i}" for i in range(0, 60_000, 997)]
    versions = {
        old.version: [encode_value(old_links[i]) for i in range(0, 60_000, 997)],
        new.version: [encode_value(new_links[i]) for i in range(0, 60_000, 997)],
    }
    snapshots, stop = [], threading.Event()

    def watch_replica() -> None:
        client = replica.client()
        while not stop.is_set():
            pipe = client.pipeline(transaction=True)  # a consistent read on the replica
            pipe.hget(META_KEY, "version").mget(sample)
            version, values = pipe.execute()
            snapshots.append((version.decode(), values))

    watcher = threading.Thread(target=watch_replica)
    watcher.start()
    try:
        sync_index(primary.client(), new)
        replica.wait_in_sync()
        time.sleep(0.05)
    finally:
        stop.set()
        watcher.join()

    seen = {version for version, _ in snapshots}
    assert seen == {old.version, new.version}, "the watcher must observe the switch"
    for version, values in snapshots:
        assert values == versions[version], f"replica served a mix under version {version}"


def test_a_sync_killed_mid_transaction_leaves_the_old_index_and_the_next_run_converges(
    redis_replicated, tmp_path
):
    primary, replica = redis_replicated
    client = primary.client()
    old_links = make_links(1_000, "old/")
    sync_index(client, build_index(old_links))
    new_links = make_links(400_000, "new/")
    new = build_index(new_links)
    (tmp_path / "index.json").write_bytes(new.to_bytes())
    sync = subprocess.Popen(
        [sys.executable, "-c", SYNC_FROM_FILE, str(tmp_path / "index.json"), primary.url],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        wait_until(lambda: _client_in_multi(client), 60, "the sync to open its transaction")
        sync.send_signal(signal.SIGKILL)
        sync.wait(10)
    finally:
        sync.kill()
    wait_until(lambda: not _client_in_multi(client), 5, "Redis to drop the dead transaction")

    assert client.hget(META_KEY, "version").decode() == build_index(old_links).version
    assert served(client) == expected(old_links)
    replica.wait_in_sync()
    assert served(replica.client()) == expected(old_links)

    report = sync_index(client, new)
    assert report.applied and report.plan.previous_version == build_index(old_links).version
    assert client.dbsize() == len(new_links) + 1
    assert client.hget(META_KEY, "version").decode() == new.version


SYNC_FROM_FILE = """
import sys, redis
from pathlib import Path
from functions.links.index import Index
from functions.links.redis_sync import sync_index
sync_index(redis.Redis.from_url(sys.argv[2]), Index.from_bytes(Path(sys.argv[1]).read_bytes()))
"""


def _client_in_multi(client: redis.Redis) -> bool:
    return any("x" in entry["flags"] for entry in client.client_list())


def test_concurrent_syncs_never_mix_and_the_loser_retries(redis_primary):
    client = redis_primary.client()
    a_links, b_links = make_links(3_000, "a/"), make_links(2_000, "b/")
    a, b = build_index(a_links), build_index(b_links)
    interfered = []

    def progress(stage: str, advance: int, total: int) -> None:
        # While A is planning (after its WATCH), B commits a whole other index.
        if stage == "read" and not interfered:
            interfered.append(sync_index(redis_primary.client(), b))

    report = sync_index(client, a, progress=progress)

    assert interfered[0].applied
    assert report.applied and report.plan.previous_version == b.version  # re-planned
    assert served(client) == expected(a_links)
    assert client.hget(META_KEY, "version").decode() == a.version


def test_writing_to_a_replica_is_refused_and_changes_nothing(redis_replicated):
    primary, replica = redis_replicated
    sync_index(primary.client(), build_index(make_links(10)))
    replica.wait_in_sync()
    with pytest.raises(redis.ReadOnlyError):
        sync_index(replica.client(), build_index(make_links(20)))
    assert served(replica.client()) == expected(make_links(10))
