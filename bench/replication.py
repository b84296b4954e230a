"""Replication, both stores, real delays: from the start of a publish until every region serves it.

- Redis: a primary and one replica per region, each replicating through a proxy
  that delays every byte by the one-way time from the primary region (as in the
  local stack). The publish is the sync function's `sync_index` on the primary
  (one MULTI/EXEC); each region is watched with the redirect's own client
  (LeanRedis GET on that region's replica).
- DynamoDB: a local DynamoDB (moto server) per region; every change of the
  primary's stream reaches each other region after its one-way delay
  (`local.dynamo_replication`, as in the drills, here without jitter). The
  publish is the sync function's `sync_table` with its production settle time,
  and each region is watched with the redirect's own reader (`DynamoLinks`,
  re-reading its pointer once a second like a warm container).

The reference, measured in the same run on the same links: one bare write on
the primary until the farthest region can read it (a SET; a `put_item` on a
second table with the same replication). Targets, on the worst round:
Redis <= reference + 100 ms (the design's one-way + 100 ms); DynamoDB <= what
its design allows: the items' replication, the settle time, the pointer's own
replication and a reader's pointer refresh, + 100 ms.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

from functions.dynamo_store import POINTER_REFRESH_S, DynamoLinks
from functions.lean_dynamo import LeanDynamo
from functions.lean_redis import LeanRedis
from functions.links.dynamo_sync import SETTLE_S, LinkTable, Replica, sync_table
from functions.links.index import build_index
from functions.links.model import Link, link_key
from functions.links.redis_sync import sync_index
from functions.links.source import load_links
from local.delay_proxy import DelayProxy
from local.dynamo_replication import TableReplication, create_link_table
from local.servers import MotoServer, RedisServer, local_dynamodb_client
from local.topology import Topology

from .report import table
from .summary import record

REPO = Path(__file__).resolve().parent.parent
REDIS_ROUNDS = 10
DYNAMODB_ROUNDS = 5
PROBE_SLUG = "bench/replication"
POLL_S = 0.002
MARGIN_MS = 100
LOCAL_CREDENTIALS = ("local", "local", None)
MEASURE = "replication: publish -> every region serves it (worst round)"


def run() -> None:
    topology = Topology(scale=1.0)
    links = [link for link in load_links([REPO / "links"]) if link.expires is None]
    farthest = max(topology.regions, key=lambda r: topology.one_way_s(topology.primary, r))
    with tempfile.TemporaryDirectory(prefix="bench-replication-") as tmp:
        redis_result = _redis(Path(tmp), topology, links, farthest)
        dynamo_result = _dynamodb(Path(tmp), topology, links, farthest)
    one_way = {r: topology.one_way_s(topology.primary, r) * 1000 for r in topology.regions}
    rows = []
    for store, (rounds, floors) in (("Redis", redis_result), ("DynamoDB", dynamo_result)):
        for region in topology.regions:
            samples = [r[region] for r in rounds]
            rows.append(
                [
                    store,
                    region,
                    f"{one_way[region]:.0f}",
                    f"{statistics.median(samples):.0f}",
                    f"{max(samples):.0f}",
                ]
            )
        everywhere = [max(r.values()) for r in rounds]
        rows.append(
            [
                store,
                "every region",
                f"bare write {statistics.median(floors):.0f}",
                f"{statistics.median(everywhere):.0f}",
                f"{max(everywhere):.0f}",
            ]
        )
    print(
        f"Publish -> region serves it, real one-way delays ({REDIS_ROUNDS} Redis publishes, "
        f"{DYNAMODB_ROUNDS} DynamoDB publishes)"
    )
    print(table(["store", "region", "one-way ms", "p50 ms", "worst ms"], rows))
    _record("redis", redis_result, lambda floor: floor + MARGIN_MS, "reference + 100 ms")
    _record(
        "dynamodb",
        dynamo_result,
        lambda floor: 2 * floor + (SETTLE_S + POINTER_REFRESH_S) * 1000 + MARGIN_MS,
        f"2 x reference + {SETTLE_S:g} s settle + {POINTER_REFRESH_S:g} s refresh + 100 ms",
    )


def _record(store: str, result, bound, target: str) -> None:
    rounds, floors = result
    everywhere = [max(r.values()) for r in rounds]
    worst = max(everywhere)
    floor = statistics.median(floors)
    record(
        MEASURE,
        store,
        f"{worst:.0f} ms (p50 {statistics.median(everywhere):.0f}) vs bare write {floor:.0f} ms",
        worst / floor,
        target=f"<= {target} ({bound(floor):.0f} ms)",
        ok=worst <= bound(floor),
    )


def _watch(read, expected: str, seen: dict, key: str, poll_s: float = POLL_S) -> threading.Thread:
    """A thread that records in seen[key] when read() first returns `expected`."""

    def watch() -> None:
        deadline = time.perf_counter() + 30
        while read() != expected:
            if time.perf_counter() > deadline:
                return
            time.sleep(poll_s)
        seen[key] = time.perf_counter()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _elapsed_ms(seen: dict, started: float, keys) -> dict[str, float]:
    missing = [key for key in keys if key not in seen]
    if missing:
        raise RuntimeError(f"never served the publish: {', '.join(map(str, missing))}")
    return {key: (seen[key] - started) * 1000 for key in keys}


def _redis(tmp: Path, topology: Topology, links: list[Link], farthest: str):
    loop = asyncio.new_event_loop()
    loop_thread = threading.Thread(target=loop.run_forever, daemon=True)
    loop_thread.start()
    primary = RedisServer(tmp / "redis-primary", name="bench-redis-primary").start()
    proxies, replicas = [], {}
    try:
        for region in topology.regions:
            delay = topology.one_way_s(topology.primary, region)
            proxy = asyncio.run_coroutine_threadsafe(
                DelayProxy(primary.port, delay).start(), loop
            ).result()
            proxies.append(proxy)
            replicas[region] = RedisServer(
                tmp / f"redis-{region}",
                name=f"bench-redis-{region}",
                replica_of=primary,
                replication_port=proxy.port,
            ).start()
        writer = primary.client()
        readers = {region: LeanRedis(replica.url) for region, replica in replicas.items()}
        rounds, floors = [], []
        key = link_key(PROBE_SLUG)
        for n in range(REDIS_ROUNDS):
            seen: dict = {}
            value = f"floor-{n}"
            watcher = _watch(
                lambda: readers[farthest].execute("GET", "bench:floor"), value.encode(), seen, 0
            )
            started = time.perf_counter()
            writer.set("bench:floor", value)
            watcher.join()
            floors.append(_elapsed_ms(seen, started, [0])[0])

            url = f"https://example.com/rev/{n}"
            seen = {}
            watchers = [
                _watch(
                    lambda r=reader: (r.execute("GET", key) or b"").split(b" ")[-1],
                    url.encode(),
                    seen,
                    region,
                )
                for region, reader in readers.items()
            ]
            started = time.perf_counter()
            sync_index(writer, build_index([*links, Link(PROBE_SLUG, url)]))
            for watcher in watchers:
                watcher.join()
            rounds.append(_elapsed_ms(seen, started, topology.regions))
        writer.close()
        for reader in readers.values():
            reader.close()
        return rounds, floors
    finally:
        for replica in replicas.values():
            replica.stop()
        primary.stop()
        for proxy in proxies:
            asyncio.run_coroutine_threadsafe(proxy.stop(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        loop_thread.join(5)


def _dynamodb(tmp: Path, topology: Topology, links: list[Link], farthest: str):
    servers = {
        r: MotoServer(tmp / f"dynamodb-{r}", name=f"bench-dynamodb-{r}") for r in topology.regions
    }
    try:
        for server in servers.values():  # started together: each takes seconds to import moto
            server.launch()
        for server in servers.values():
            server.wait_accepting(server.port, 60)
        clients = {r: local_dynamodb_client(s.endpoint, r) for r, s in servers.items()}
        primary = topology.primary
        floors = _dynamodb_floor(clients, topology, farthest)
        name = f"links-{uuid.uuid4().hex[:8]}"
        for region, client in clients.items():
            create_link_table(client, name, stream=region == primary)
        replicas = tuple(Replica(r, c) for r, c in clients.items())
        table = LinkTable(name, Replica(primary, clients[primary]), replicas)
        with _replication(clients, name, topology):
            sync_table(table, build_index(links))
            readers = {
                region: DynamoLinks(
                    LeanDynamo(
                        region,
                        endpoint=server.endpoint,
                        credentials=LOCAL_CREDENTIALS,
                        read_timeout=5,
                    ),
                    name,
                    region,
                )
                for region, server in servers.items()
            }

            def served_url(reader: DynamoLinks) -> str | None:
                link = reader.lookup(PROBE_SLUG)[0]
                return link.url if link else None

            rounds = []
            rng = random.Random(5)
            for n in range(DYNAMODB_ROUNDS):
                url = f"https://example.com/rev/{n}"
                seen: dict = {}
                watchers = [
                    _watch(lambda r=reader: served_url(r), url, seen, region, poll_s=0.005)
                    for region, reader in readers.items()
                ]
                # Requests reach a container at any point of its pointer refresh.
                time.sleep(rng.uniform(0, POINTER_REFRESH_S))
                started = time.perf_counter()
                report = sync_table(table, build_index([*links, Link(PROBE_SLUG, url)]))
                if report.pending_regions:
                    raise RuntimeError(f"regions left behind: {report.pending_regions}")
                for watcher in watchers:
                    watcher.join()
                rounds.append(_elapsed_ms(seen, started, topology.regions))
        return rounds, floors
    finally:
        for server in servers.values():
            server.stop()


def _replication(clients: dict, name: str, topology: Topology) -> TableReplication:
    primary = topology.primary
    return TableReplication(
        clients[primary],
        name,
        {r: (c, topology.one_way_s(primary, r)) for r, c in clients.items() if r != primary},
    )


def _dynamodb_floor(clients: dict, topology: Topology, farthest: str) -> list[float]:
    """One bare put_item on the primary until the farthest replica holds it, per round."""
    name = f"floor-{uuid.uuid4().hex[:8]}"
    for region, client in clients.items():
        create_link_table(client, name, stream=region == topology.primary)
    key = {"pk": {"S": "floor"}}

    def read() -> str | None:
        item = clients[farthest].get_item(TableName=name, Key=key).get("Item")
        return item["n"]["S"] if item else None

    floors = []
    with _replication(clients, name, topology):
        for n in range(DYNAMODB_ROUNDS):
            seen: dict = {}
            watcher = _watch(read, str(n), seen, 0)
            started = time.perf_counter()
            clients[topology.primary].put_item(TableName=name, Item={**key, "n": {"S": str(n)}})
            watcher.join()
            floors.append(_elapsed_ms(seen, started, [0])[0])
    for client in clients.values():
        client.delete_table(TableName=name)
    return floors
