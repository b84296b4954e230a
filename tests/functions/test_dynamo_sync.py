"""Publishing to a DynamoDB global table while items replicate late, out of order, twice.

Real parts: one moto server per region, the lean reader each region's redirect
function uses, and the replication simulator copying every item change from
the primary's stream after the region's delay plus jitter, some lost and
redelivered.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from functions.links import dynamo_sync
from functions.links.dynamo_sync import SyncConflict, sync_table
from functions.links.index import Index, build_index
from functions.links.model import GONE_RETENTION_SECONDS, Link, decode_value, value_text
from functions.links.redis_sync import sync_index
from local.servers import wait_until
from tests.support.dynamo import GlobalTable

REPO = Path(__file__).resolve().parents[2]
REGIONS = ("eu-west-1", "us-west-2", "ap-southeast-1")
#: Readers re-read their region's pointer this often; the writer waits longer.
READER_REFRESH_S = 0.02
FAST = {"settle_s": 0.1, "refresh_s": 0.05, "flip_timeout": 20}


def links(count: int, revision: int = 0, start: int = 0) -> list[Link]:
    return [
        Link(f"team/{i:04d}", f"https://example.com/{i}/r{revision}", (302, 301)[i % 2])
        for i in range(start, start + count)
    ]


def answer(link) -> str | None:
    if link is None:
        return None
    return f"{link.status} {'q' if link.forward_query else '-'} {link.expires} {link.url}"


def expected(index: Index) -> dict[str, str]:
    return {link.slug: value_text(link) for link in index.links}


def assert_serves(table: GlobalTable, region: str, index: Index, slugs) -> None:
    reader = table.reader(region, refresh_s=0)
    want = expected(index)
    for slug in slugs:
        link, served = reader.lookup(slug)
        assert served.version == index.version, (region, served)
        assert answer(link) == want.get(slug), (region, slug)


def test_readers_never_see_a_mix_while_items_replicate_out_of_order(dynamodb_regions):
    v1 = build_index(links(120))
    v2 = build_index(links(60, revision=2) + links(40, start=60) + links(30, 3, start=200))
    v3 = build_index(links(90, revision=3, start=30) + links(30, 3, start=200))
    indexes = [v1, v2, v3]
    want = {index.version: expected(index) for index in indexes}
    order = {index.version: n for n, index in enumerate(indexes)}
    slugs = sorted(set().union(*want.values()))
    with GlobalTable(
        dynamodb_regions, jitter_s=0.15, redeliver_share=0.2, redeliver_after_s=0.2, seed=7
    ) as table:
        sync_table(table.table, v1, **FAST)
        problems: list[str] = []
        seen: dict[str, list[int]] = {region: [] for region in REGIONS}
        stop = threading.Event()

        def read(region: str) -> None:
            reader = table.reader(region, refresh_s=READER_REFRESH_S)
            rng = random.Random(region)  # noqa: S311
            while not stop.is_set():
                slug = rng.choice(slugs)
                link, served = reader.lookup(slug)
                if answer(link) != want[served.version].get(slug):
                    problems.append(f"{region} {served.version} {slug}: {answer(link)}")
                if not seen[region] or seen[region][-1] != order[served.version]:
                    seen[region].append(order[served.version])
                time.sleep(0.002)  # leave the machine to the replication being drilled

        readers = [threading.Thread(target=read, args=(region,)) for region in REGIONS]
        for reader in readers:
            reader.start()
        try:
            reports = [sync_table(table.table, index, **FAST) for index in (v2, v3)]
        finally:
            stop.set()
            for reader in readers:
                reader.join()
        assert problems == []
        for region in REGIONS:
            assert seen[region] == sorted(seen[region]), f"{region} went back: {seen[region]}"
            assert seen[region][-1] == 2
        assert [report.pending_regions for report in reports] == [(), ()]
        assert all(report.pruned for report in reports)
        assert table.replication.reordered > 0 and table.replication.redelivered > 0
        table.replication.wait_idle()
        for region in REGIONS:
            assert_serves(table, region, v3, slugs)


def test_a_region_that_lacks_items_keeps_the_old_version_until_it_has_them(dynamodb_regions):
    v1, v2 = build_index(links(40)), build_index(links(40, revision=2)[5:] + links(5, 2, 100))
    slugs = sorted(expected(v1).keys() | expected(v2).keys())
    with GlobalTable(dynamodb_regions, jitter_s=0.05, seed=3) as table:
        sync_table(table.table, v1, **FAST)
        table.replication.hold("us-west-2")
        report = sync_table(table.table, v2, **{**FAST, "flip_timeout": 3})
        assert report.pending_regions == ("us-west-2",)
        assert report.pruned == 0  # us-west-2 still needs generation 1's entries
        table.replication.wait_idle()
        assert_serves(table, "us-west-2", v1, slugs)
        assert_serves(table, "eu-west-1", v2, slugs)
        assert_serves(table, "ap-southeast-1", v2, slugs)

        table.replication.release("us-west-2")
        again = sync_table(table.table, v2, **FAST)  # the publish retried
        assert again.plan.written_items == 0 and again.pending_regions == ()
        assert again.pruned == 40  # 35 changed and 5 removed links lose their old entry
        table.replication.wait_idle()
        for region in REGIONS:
            assert_serves(table, region, v2, slugs)


KILLED_SYNC = """
import itertools, json, sys, threading, time
from functions.links import dynamo_sync
from functions.links.index import Index
from local.servers import local_dynamodb_client
args = json.loads(sys.argv[1])
clients = {r: local_dynamodb_client(e, r) for r, e in args["endpoints"].items()}
replicas = tuple(dynamo_sync.Replica(r, c) for r, c in clients.items())
table = dynamo_sync.LinkTable(args["table"], replicas[0], replicas)
write_batch, calls, first_written = dynamo_sync._write_batch, itertools.count(), threading.Event()

def killed_after_one_batch(table, batch):
    if next(calls):  # every batch but the first waits to be killed
        first_written.wait()
        print("wrote one batch", flush=True)
        time.sleep(60)
    written = write_batch(table, batch)
    first_written.set()
    return written

dynamo_sync._write_batch = killed_after_one_batch
index = Index.from_bytes(open(args["index"], "rb").read())
dynamo_sync.sync_table(table, index, lease_seconds=1)
"""


def test_a_killed_sync_leaves_the_old_version_served_and_a_rerun_converges(
    dynamodb_regions, tmp_path
):
    v1, v2 = build_index(links(50)), build_index(links(50, revision=2))
    slugs = sorted(expected(v1))
    (tmp_path / "v2.json").write_bytes(v2.to_bytes())
    with GlobalTable(dynamodb_regions, jitter_s=0.05, seed=5) as table:
        sync_table(table.table, v1, **FAST)
        args = {
            "table": table.name,
            "index": str(tmp_path / "v2.json"),
            "endpoints": {r: dynamodb_regions[r].endpoint for r in REGIONS},
        }
        process = subprocess.Popen(
            [sys.executable, "-c", KILLED_SYNC, json.dumps(args)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout.readline() == "wrote one batch\n"
        finally:
            process.kill()
            process.wait()
        table.replication.wait_idle()
        for region in REGIONS:
            assert_serves(table, region, v1, slugs)

        def rerun():
            try:
                return sync_table(table.table, v2, **FAST)
            except SyncConflict:  # the killed run's lease has not run out yet
                return None

        reports = []
        wait_until(lambda: reports.append(rerun()) or reports[-1], 10, "the lease to run out")
        report = reports[-1]
        assert report.plan.generation == 2 and report.plan.changed == tuple(slugs)
        assert report.plan.written_items == 25  # the killed run's 25 stand
        table.replication.wait_idle()
        for region in REGIONS:
            assert_serves(table, region, v2, slugs)


def test_a_one_percent_change_writes_only_the_changed_items(dynamodb_regions):
    before = links(500)
    modified = [Link(link.slug, link.url + "?v=2") for link in before[496:498]]
    after = [*before[:496], *modified, Link("new/0", "https://example.com/new/0")]
    with GlobalTable(dynamodb_regions) as table:
        sync_table(table.table, build_index(before), **FAST)
        table.replication.wait_idle()
        first = len(table.replication.changed_keys)
        report = sync_table(table.table, build_index(after), **FAST)
        table.replication.wait_idle()
        written = [k for k in table.replication.changed_keys[first:] if not k.startswith("_")]
    plan = report.plan
    assert (plan.changed, plan.removed, plan.added) == (
        ("team/0496", "team/0497"),
        ("team/0498", "team/0499"),
        ("new/0",),
    )
    assert plan.written_items == 5
    # Changed and removed links are written once more when their old entry is pruned.
    assert sorted(written) == sorted([*plan.changed, *plan.removed] * 2 + ["new/0"])


def test_expiry_answers_like_the_redis_path(dynamodb_regions, redis_primary):
    now = int(time.time())
    index = build_index(
        [
            Link("live", "https://example.com/live"),
            Link("soon", "https://example.com/soon", expires=now + 600),
            Link("gone", "https://example.com/gone", expires=now - 3600),
            Link("ending", "https://example.com/end", expires=now - GONE_RETENTION_SECONDS + 5),
            Link("ancient", "https://example.com/x", expires=now - GONE_RETENTION_SECONDS - 5),
        ]
    )
    sync_index(redis_primary.client(), index)
    redis = redis_primary.client()
    with GlobalTable(dynamodb_regions) as table:
        sync_table(table.table, index, **FAST)
        table.replication.wait_idle()
        for region in REGIONS:
            reader = table.reader(region)
            for slug in ("live", "soon", "gone", "ending", "ancient", "unknown"):
                value = redis.get(f"link:{slug}")
                from_redis = decode_value(value) if value else None
                assert reader.lookup(slug)[0] == from_redis, (region, slug)
            # Once Redis's TTL would have dropped them, DynamoDB answers 404 for them too.
            later = now + 10
            assert reader.lookup("ending", now=later)[0] is None
            assert reader.lookup("soon", now=now + 600 + GONE_RETENTION_SECONDS)[0] is None
            assert reader.lookup("live", now=later)[0] is not None


def test_a_failed_sync_hands_the_table_over_at_once(dynamodb_regions, monkeypatch):
    v1, v2 = build_index(links(30)), build_index(links(30, revision=2))
    write_batch = dynamo_sync._write_batch

    def unavailable(table, batch):
        raise RuntimeError("DynamoDB did not answer")

    with GlobalTable(dynamodb_regions) as table:
        sync_table(table.table, v1, **FAST)
        monkeypatch.setattr(dynamo_sync, "_write_batch", unavailable)
        with pytest.raises(RuntimeError, match="did not answer"):
            sync_table(table.table, v2, **FAST)  # with the default 15-minute lease
        monkeypatch.setattr(dynamo_sync, "_write_batch", write_batch)
        report = sync_table(table.table, v2, **FAST)
        assert report.plan.written_items == 30 and report.pending_regions == ()
        table.replication.wait_idle()
        assert_serves(table, "us-west-2", v2, sorted(expected(v2)))


@pytest.mark.parametrize("writers", [1, dynamo_sync.WRITERS])
def test_sync_reports_progress_per_batch(dynamodb_regions, writers, monkeypatch):
    monkeypatch.setattr(dynamo_sync, "WRITERS", writers)
    calls = []
    with GlobalTable(dynamodb_regions) as table:
        sync_table(
            table.table,
            build_index(links(60)),
            progress=lambda *call: calls.append(call),
            **FAST,
        )
    assert calls[0] == ("write", 0, 60)
    assert sorted(advance for _, advance, _ in calls[1:]) == [10, 25, 25]
