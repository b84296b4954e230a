"""Publish -> every client sees it: the local stack at real delays, the edge caching as CloudFront.

Each round, every client region first has the answers about to change in its
region's edge cache (a redirect, and a 404 for a link about to be added), then
`scripts.publish_links` runs as CI runs it: upload, wait until every region
serves the version, invalidate every region's cache and wait for completion.
Measured: from the start of the publish until every client region gets the new
answers (the target: the moment the publish returns, with no stale answer
after it), against the floor measured in the same round, the moment every
region's function serves the new version. Without invalidation the stale
answers would last up to the functions' cache lifetimes (300 s, 404s 60 s).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from statistics import median

from functions.links.index import build_index
from functions.links.source import load_links
from local.stack import LocalStack
from local.topology import Topology
from scripts import publish_links

from .global_latency import Client
from .report import table
from .summary import record

REPO = Path(__file__).resolve().parent.parent
ROUNDS = 5


def run() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        stack = LocalStack(Path(tmp) / "stack", topology=Topology(), edge_port=0).start()
        try:
            rounds = [publish_round(stack, Path(tmp), n) for n in range(ROUNDS)]
        finally:
            stack.stop()
    rows = [
        [
            str(n + 1),
            f"{served * 1000:.0f} ms",
            f"{returned * 1000:.0f} ms",
            f"{seen * 1000:.0f} ms",
            f"{seen / served:.2f}x",
            str(stale),
        ]
        for n, (served, returned, seen, stale) in enumerate(rounds)
    ]
    header = ["round", "regions serve it", "publish returns", "every client sees it"]
    print(table([*header, "vs regions", "stale after return"], rows))
    served = median(r[0] for r in rounds)
    seen = median(r[2] for r in rounds)
    stale = sum(r[3] for r in rounds)
    print(
        f"publish -> every client sees it: median {seen * 1000:.0f} ms "
        f"= {seen / served:.2f}x the time until every region serves it ({served * 1000:.0f} ms); "
        f"stale answers after the publish returned: {stale} (target 0)"
    )
    record(
        "publish -> every client sees it, edge caches invalidated (median)",
        "redis",
        f"{seen * 1000:.0f} ms vs every region serving it {served * 1000:.0f} ms; {stale} stale",
        seen / served,
        target="0 stale after the publish returns",
        ok=stale == 0,
    )


def publish_round(stack: LocalStack, tmp: Path, n: int) -> tuple[float, float, float, int]:
    """(regions serve it, publish returned, every client sees it, stale answers after return)."""
    links = tmp / f"links-{n}"
    shutil.copytree(REPO / "links", links)
    target, added_slug = f"https://docs.example.com/round-{n}", f"bench/fresh-{n}"
    engineering = links / "engineering.yaml"
    engineering.write_text(
        engineering.read_text().replace("docs: https://docs.example.com/", f"docs: {target}")
        + f"{added_slug}: {target}\n"
    )
    version = build_index(load_links([links])).version
    outputs = tmp / "outputs.json"
    outputs.write_text(json.dumps(stack.endpoints.stack_outputs()))
    clients = [Client(stack.edge.port, region) for region in stack.topology.regions]
    for client in clients:  # the old redirect and the 404 of the link to come, cached
        for path in ("/docs", f"/{added_slug}"):
            client.get(path)
            client.get(path)

    served_at: list[float] = []
    started = time.perf_counter()
    watcher = threading.Thread(target=watch_regions, args=(stack, version, started, served_at))
    watcher.start()
    with patched_env(stack.endpoints.publisher_env()), contextlib.redirect_stdout(io.StringIO()):
        status = publish_links.main(
            [
                *(str(links), "--stack-outputs", str(outputs)),
                *("--interval", "0.02", "--timeout", "30"),
                *("--header", f"x-origin-verify: {stack.origin_verify}"),
            ]
        )
    returned = time.perf_counter() - started
    watcher.join()
    if status != 0 or not served_at:
        raise RuntimeError(f"publish round {n} failed (exit status {status})")
    stale = sum(
        client.get(path)[3] != target for client in clients for path in ("/docs", f"/{added_slug}")
    )
    seen = time.perf_counter() - started
    return served_at[0], returned, seen, stale


def watch_regions(stack: LocalStack, version: str, started: float, served_at: list) -> None:
    """Record when every region's function first serves `version` (the floor)."""
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline:
        if set(stack.served_versions().values()) == {version}:
            served_at.append(time.perf_counter() - started)
            return
        time.sleep(0.002)


@contextlib.contextmanager
def patched_env(env: dict[str, str]):
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
