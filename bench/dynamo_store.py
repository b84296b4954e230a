"""The DynamoDB store against its references, beside the Redis store's figures.

Every DynamoDB figure is measured on a local DynamoDB (a moto server, the engine
available here): its absolute times are moto's, a Python web server, far slower
than DynamoDB itself. The ratios compare clients and code paths on the same engine.

- Warm read: DynamoLinks.lookup (the lean signed client; pointer cached) vs a bare
  boto3 `get_item` of the same item on the same local table, same process,
  interleaved blocks (target: p50 and p99 <= 1.0x). Beside it, the Redis store's
  lean GET vs redis-py's on a local redis-server.
- Cold start: a fresh interpreter imports and answers one redirect: the DynamoDB hit
  path with the lean reader, the same lookup with boto3, and the FastAPI + Mangum and
  Powertools references of the cold_start suite (targets <= 0.25x and <= 0.5x).
- Sync: SYNC_LINKS links into an empty table vs boto3's `batch_writer`, then a 1%
  change. Scaled down from the Redis suite's 1,000,000: moto stores ~6,000 items/s
  and scans ~4,000/s, so a million would take over ten minutes per round and time
  moto, not the sync. The Redis store's sync of the same links is printed beside it.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import boto3
import redis

from functions.dynamo_store import DynamoLinks
from functions.lean_dynamo import LeanDynamo
from functions.lean_redis import LeanRedis
from functions.links.dynamo_sync import LinkTable, Replica, sync_table
from functions.links.index import build_index
from functions.links.model import Link, link_key
from functions.links.redis_sync import sync_index
from local.dynamo_replication import create_link_table
from local.servers import (
    MotoServer,
    RedisServer,
    local_dynamodb_client,
    local_s3_env,
    require_binary,
)

from .cold_start import RUNS, one_run
from .link_sync import make_links, one_percent_change, resp_file
from .redirect import percentile
from .report import table

REGION = "eu-west-1"
REQUESTS = 4000
BLOCK = 200
SYNC_LINKS = 100_000
SYNC_ROUNDS = 3
COLD_VARIANTS = {
    "DynamoDB, lean reader (this service)": "bench.reference_apps.dynamodb_lean",
    "DynamoDB, boto3": "bench.reference_apps.dynamodb_boto3",
    "Redis, this service's handler": "functions.redirect",
    "FastAPI + Mangum (reference)": "bench.reference_apps.fastapi_mangum",
    "Powertools resolver (reference)": "bench.reference_apps.powertools",
}
FAST_FLIP = {"settle_s": 0.0, "refresh_s": 0.0}


def run() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-dynamo-") as tmp:
        moto = MotoServer(Path(tmp) / "dynamodb", name="bench-dynamodb").start()
        server = RedisServer(Path(tmp) / "redis", name="bench-redis").start()
        try:
            client = local_dynamodb_client(moto.endpoint, REGION)
            links = [Link("docs", "https://docs.example.com/")]
            table = _table(client)
            sync_table(table, build_index(links), **FAST_FLIP)
            sync_index(server.client(), build_index(links))
            warm(moto, client, table.name, server)
            cold(moto, table.name, server)
            sync(client, server, Path(tmp))
        finally:
            server.stop()
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


def warm(moto: MotoServer, client, name: str, server: RedisServer) -> None:
    env = local_s3_env(moto.endpoint)
    lean = LeanDynamo(
        REGION,
        endpoint=moto.endpoint,
        credentials=(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], None),
        read_timeout=5,
    )
    links = DynamoLinks(lean, name, REGION)
    key = {"pk": {"S": "docs"}}
    assert links.lookup("docs")[0] is not None
    dynamo = _interleaved(
        lambda: links.lookup("docs"), lambda: client.get_item(TableName=name, Key=key)
    )
    lean_redis, redis_py = LeanRedis(server.url), redis.Redis.from_url(server.url)
    redis_times = _interleaved(
        lambda: lean_redis.execute("GET", link_key("docs")), lambda: redis_py.get(link_key("docs"))
    )
    redis_py.close()
    rows = []
    for store, (ours, reference), names in (
        ("DynamoDB (moto)", dynamo, ("DynamoLinks.lookup", "boto3 get_item")),
        ("Redis", redis_times, ("LeanRedis GET", "redis-py GET")),
    ):
        for label, q in (("p50", 50), ("p99", 99)):
            a, b = percentile(ours, q) / 1000, percentile(reference, q) / 1000
            target = f"<= 1.0 {'ok' if a / b <= 1.0 else 'MISSED'}" if store != "Redis" else ""
            rows.append(
                [store, label, f"{names[0]} {a:.0f}", f"{names[1]} {b:.0f}", f"{a / b:.2f}", target]
            )
    print(f"Warm read: {REQUESTS:,} reads each, interleaved blocks of {BLOCK}, same process")
    print(table(["store", "", "ours µs", "reference µs", "ratio", "target"], rows))


def cold(moto: MotoServer, name: str, server: RedisServer) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(local_s3_env(moto.endpoint))
    env.update(
        AWS_ENDPOINT_URL_DYNAMODB=moto.endpoint,
        AWS_REGION=REGION,
        LINK_TABLE=name,
        REDIS_URL=server.url,
        PYTHONPATH=str(Path(__file__).resolve().parent.parent),
    )
    for module in COLD_VARIANTS.values():  # bytecode caches written, each variant checked
        one_run(module, env)
    times: dict[str, list[float]] = {variant: [] for variant in COLD_VARIANTS}
    for _ in range(RUNS):
        for variant, module in COLD_VARIANTS.items():
            times[variant].append(one_run(module, env))
    median = {variant: statistics.median(t) * 1000 for variant, t in times.items()}
    ours = median["DynamoDB, lean reader (this service)"]
    fastapi = median["FastAPI + Mangum (reference)"]
    powertools = median["Powertools resolver (reference)"]
    rows = [
        [variant, f"{ms:.1f}", f"{ms / fastapi:.2f}", f"{ms / powertools:.2f}"]
        for variant, ms in median.items()
    ]
    print(f"\nCold start: fresh interpreter, import + one answered redirect (median of {RUNS})")
    print(table(["variant", "ms", "/ FastAPI+Mangum", "/ Powertools"], rows))
    print(
        f"DynamoDB lean reader: {ours / fastapi:.2f}x FastAPI+Mangum (target <= 0.25 "
        f"{'ok' if ours / fastapi <= 0.25 else 'MISSED'}), {ours / powertools:.2f}x Powertools "
        f"(target <= 0.5 {'ok' if ours / powertools <= 0.5 else 'MISSED'})"
    )


def sync(client, server: RedisServer, tmp: Path) -> None:
    rng = random.Random(7)
    links = make_links(SYNC_LINKS, rng)
    index = build_index(links)
    env = local_s3_env(client.meta.endpoint_url)
    resource = boto3.resource(
        "dynamodb",
        endpoint_url=client.meta.endpoint_url,
        region_name=REGION,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    reference_times, full_times = [], []
    for _ in range(SYNC_ROUNDS):  # interleaved, each into a fresh table
        reference_table = _table(client)
        started = time.perf_counter()
        with resource.Table(reference_table.name).batch_writer() as writer:
            for link in index.links:  # the same item a sync writes: key, entries, generation
                writer.put_item(Item={"pk": link.slug, "e": f"1 - {link.url}", "w": 1})
        reference_times.append(time.perf_counter() - started)
        client.delete_table(TableName=reference_table.name)
        ours = _table(client)
        full = sync_table(ours, index, **FAST_FLIP)
        full_times.append(full.seconds)
    reference, full_seconds = statistics.median(reference_times), statistics.median(full_times)
    changed = build_index(one_percent_change(links, rng))
    change = sync_table(ours, changed, **FAST_FLIP)
    redis_full, redis_change, pipe = _redis_sync(server, links, index, changed, tmp)
    plan = change.plan
    print(
        f"\nSync, {SYNC_LINKS:,} links (scaled from 1,000,000, see the suite's notes; "
        f"full loads: median of {SYNC_ROUNDS} interleaved rounds)"
    )
    print(
        table(
            ["store", "measure", "seconds", "ratio", "written"],
            [
                [
                    "DynamoDB (moto)",
                    "boto3 batch_writer (reference)",
                    f"{reference:.1f}",
                    "1.00",
                    f"{SYNC_LINKS:,}",
                ],
                [
                    "DynamoDB (moto)",
                    "full sync into an empty table",
                    f"{full_seconds:.1f}",
                    f"{full_seconds / reference:.2f}",
                    f"{full.plan.written_items:,} (+ every item read back)",
                ],
                [
                    "DynamoDB (moto)",
                    "1% change",
                    f"{change.seconds:.1f}",
                    f"{change.seconds / reference:.2f}",
                    f"{plan.written_items:,} ({len(plan.added):,} added, {len(plan.changed):,} "
                    f"changed, {len(plan.removed):,} removed) + {change.pruned:,} pruned",
                ],
                ["Redis", "redis-cli --pipe (reference)", f"{pipe:.2f}", "1.00", f"{SYNC_LINKS:,}"],
                [
                    "Redis",
                    "full sync into an empty Redis",
                    f"{redis_full:.2f}",
                    f"{redis_full / pipe:.2f}",
                    f"{SYNC_LINKS:,}",
                ],
                [
                    "Redis",
                    "1% change",
                    f"{redis_change.seconds:.2f}",
                    f"{redis_change.seconds / pipe:.2f}",
                    f"{redis_change.plan.written_keys:,}",
                ],
            ],
        )
    )

    print(
        "Redis at this scale is mostly fixed costs; its million-link figures are the "
        "link_sync suite's."
    )


def _redis_sync(server: RedisServer, links, index, changed, tmp: Path):
    data = tmp / "links.resp"
    resp_file(links, data)
    client = server.client(socket_timeout=300)
    try:
        client.flushall()
        started = time.perf_counter()
        with data.open("rb") as stdin:
            subprocess.run(
                [require_binary("redis-cli"), "-p", str(server.port), "--pipe"],
                stdin=stdin,
                stdout=subprocess.DEVNULL,
                check=True,
            )
        pipe = time.perf_counter() - started
        client.flushall()
        full = sync_index(client, index).seconds
        change = sync_index(client, changed)
    finally:
        client.close()
    return full, change, pipe
