"""Sync speed: a million links into an empty Redis vs `redis-cli --pipe`, and a 1% change.

The reference is Redis's documented mass-insertion path: `redis-cli --pipe`
fed a ready RESP file with one SET per link (file generation not timed). The
sync is timed from an in-memory index to the committed transaction, so it
includes planning, RESP generation and the atomic EXEC that --pipe does not do.
"""

from __future__ import annotations

import functools
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from functions.links.index import Index, build_index
from functions.links.model import LINK_KEY_PREFIX, Link, value_text
from functions.links.redis_sync import sync_index
from local.servers import RedisServer, require_binary

from .report import table
from .summary import at_most, record

LINKS = 1_000_000
ROUNDS = 3
TARGET_RATIO = 1.5
#: The summary's rows, shared with the DynamoDB store's sync.
SYNC = f"sync {LINKS:,} links into an empty store"
CHANGE_WRITES = f"1% change of {LINKS:,} links: items written"
CHANGE_TIME = f"1% change of {LINKS:,} links: time"


def make_links(count: int, rng: random.Random) -> list[Link]:
    teams = ["eng", "ops", "people", "sales", "docs", "design", "data", "sec"]
    links = []
    for i in range(count):
        team = teams[i % len(teams)]
        path = "/".join(f"{rng.getrandbits(32):08x}" for _ in range(rng.randint(1, 4)))
        links.append(
            Link(
                slug=f"{team}/{i:07d}",
                url=f"https://{team}.example.com/{path}",
                status=(302, 301, 307, 308)[i % 4],
                forward_query=i % 5 == 0,
            )
        )
    return links


def resp_file(links: list[Link], path: Path) -> None:
    with path.open("w") as out:
        for link in links:
            key, value = LINK_KEY_PREFIX + link.slug, value_text(link)
            out.write(f"*3\r\n$3\r\nSET\r\n${len(key)}\r\n{key}\r\n${len(value)}\r\n{value}\r\n")


def one_percent_change(links: list[Link], rng: random.Random) -> list[Link]:
    changed = list(links)
    picks = rng.sample(range(len(links)), len(links) // 100)
    third = len(picks) // 3
    for i in picks[:third]:
        changed[i] = Link(links[i].slug, links[i].url + "?rev=2", links[i].status)
    removed = set(picks[third : 2 * third])
    changed = [link for i, link in enumerate(changed) if i not in removed]
    changed += [Link(f"new/{i:07d}", f"https://new.example.com/{i}") for i in range(third)]
    return changed


@functools.cache
def dataset(count: int) -> tuple[list[Link], Index, Index]:
    """`count` generated links, their index, and the index after a 1% change (the same each run)."""
    rng = random.Random(7)
    links = make_links(count, rng)
    return links, build_index(links), build_index(one_percent_change(links, rng))


def run() -> None:
    links, index, changed = dataset(LINKS)
    redis_cli = require_binary("redis-cli")
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        data = Path(tmp) / "links.resp"
        resp_file(links, data)
        server = RedisServer(Path(tmp) / "redis", name="bench-redis").start()
        client = server.client(socket_timeout=300)
        try:
            pipe_times, sync_times = [], []
            for _ in range(ROUNDS):  # interleaved, each into an empty Redis
                client.flushall()
                started = time.perf_counter()
                with data.open("rb") as stdin:
                    subprocess.run(
                        [redis_cli, "-p", str(server.port), "--pipe"],
                        stdin=stdin,
                        stdout=subprocess.DEVNULL,
                        check=True,
                    )
                pipe_times.append(time.perf_counter() - started)
                client.flushall()
                sync_times.append(sync_index(client, index).seconds)
            full = statistics.median(sync_times)
            reference = statistics.median(pipe_times)

            noop = sync_index(client, index)
            change = sync_index(client, changed)
        finally:
            client.close()
            server.stop()

    plan = change.plan
    ratio, target, ok = at_most(full / reference, TARGET_RATIO)
    record(
        SYNC,
        "redis",
        f"{full:.2f} s vs redis-cli --pipe {reference:.2f} s",
        ratio,
        target=target,
        ok=ok,
    )
    changed_links = len(plan.added) + len(plan.changed) + len(plan.removed)
    record(
        CHANGE_WRITES,
        "redis",
        f"{plan.written_keys:,} keys for {changed_links:,} changed links",
        plan.written_keys / changed_links,
        target="only what changed",
        ok=plan.written_keys == changed_links,
    )
    record(
        CHANGE_TIME,
        "redis",
        f"{change.seconds:.2f} s (reads every key to diff) vs --pipe load {reference:.2f} s",
        change.seconds / reference,
    )
    print(f"Link sync, {LINKS:,} links (median of {ROUNDS} interleaved rounds)")
    print(
        table(
            ["measure", "seconds", "ratio", "target"],
            [
                ["redis-cli --pipe (reference)", f"{reference:.2f}", "1.00", ""],
                [
                    "full sync into empty Redis",
                    f"{full:.2f}",
                    f"{ratio:.2f}",
                    f"{target} {'ok' if ok else 'MISSED'}",
                ],
                [
                    "re-sync, nothing changed",
                    f"{noop.seconds:.2f}",
                    f"{noop.seconds / reference:.2f}",
                    f"{noop.plan.written_keys} keys written",
                ],
                [
                    "1% change",
                    f"{change.seconds:.2f}",
                    f"{change.seconds / reference:.2f}",
                    f"{plan.written_keys:,} keys written ({len(plan.added):,} added, "
                    f"{len(plan.changed):,} changed, {len(plan.removed):,} removed)",
                ],
            ],
        )
    )
