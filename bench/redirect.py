"""Warm redirects: handler time per request vs a bare redis-py GET, same process, same Redis.

The reference is the least a Python redirect could do: `redis.Redis.get()` on a
connected client. The handler does that lookup through its own client plus
everything else: event parsing, slug normalisation, the response and its
structured log line (written to /dev/null here). Measured in interleaved
blocks so both see the same machine state. Target: p50 and p99 <= 1.0x.
A templated hit (`/jira/ABC-1`: the exact GET misses, one MGET of the shorter
slugs answers) is shown beside it: two reads, so about twice the reference.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import redis

from functions import redirect, region
from functions.links.index import build_index
from functions.links.model import Link, link_key
from functions.links.redis_sync import sync_index
from local.servers import RedisServer

from .report import table
from .summary import at_most, record

REPO = Path(__file__).resolve().parent.parent
REQUESTS = 20_000
BLOCK = 500
TARGET = 1.0
#: The summary's row, shared with the DynamoDB store's warm read.
WARM = "warm read vs a bare client, same server:"


def _ok(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def request(path: str) -> dict:
    event = json.loads((REPO / "tests" / "events" / "http-api-proxy.json").read_text())
    event.update(rawPath=path, rawQueryString="", isBase64Encoded=False)
    event.pop("body")
    event["requestContext"]["http"].update(method="GET", path=path)
    return event


def run() -> None:
    event, templated = request("/handbook"), request("/jira/ABC-1")
    with tempfile.TemporaryDirectory(prefix="bench-warm-") as tmp:
        server = RedisServer(Path(tmp), name="bench-redis").start()
        try:
            link = Link("handbook", "https://handbook.example.com/")
            template = Link("jira", "https://jira.example.com/browse/{path}")
            sync_index(server.client(), build_index([link, template]))
            os.environ["REDIS_URL"] = server.url
            region.forget()
            bare = redis.Redis.from_url(server.url)
            key = link_key("handbook")
            ours, reference, two_reads = [], [], []
            with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
                for _ in range(200):  # connect and warm both
                    assert redirect.handler(event, None)["statusCode"] == 302
                    assert redirect.handler(templated, None)["statusCode"] == 302
                    assert bare.get(key)
                clock = time.perf_counter_ns
                for _ in range(REQUESTS // BLOCK):
                    for _ in range(BLOCK):
                        started = clock()
                        redirect.handler(event, None)
                        ours.append(clock() - started)
                    for _ in range(BLOCK):
                        started = clock()
                        bare.get(key)
                        reference.append(clock() - started)
                    for _ in range(BLOCK // 5):  # a sample: it is not the target
                        started = clock()
                        redirect.handler(templated, None)
                        two_reads.append(clock() - started)
            bare.close()
        finally:
            server.stop()
    rows = []
    for label, q in (("p50", 50), ("p99", 99)):
        a, b = percentile(ours, q) / 1000, percentile(reference, q) / 1000
        ratio, target, ok = at_most(a / b, TARGET)
        rows.append([label, f"{b:.1f}", f"{a:.1f}", f"{ratio:.2f}", f"{target} {_ok(ok)}"])
        record(
            f"{WARM} {label}",
            "redis",
            f"handler {a / 1000:.3f} ms vs redis-py GET {b / 1000:.3f} ms",
            ratio,
            target=target,
            ok=ok,
        )
    for label, q in (("templated p50", 50), ("templated p99", 99)):
        a, b = percentile(two_reads, q) / 1000, percentile(reference, q) / 1000
        rows.append([label, f"{b:.1f}", f"{a:.1f}", f"{a / b:.2f}", "two reads (GET + MGET)"])
    print(f"Warm redirect: {REQUESTS:,} requests each, interleaved blocks of {BLOCK}")
    print(table(["", "redis-py GET µs", "handler µs", "ratio", "target"], rows))
    sys.stdout.flush()
