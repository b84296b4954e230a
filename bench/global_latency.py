"""The local stack at real (unscaled) delays: latency per client region, replication, failover.

Measured through the edge with caching off, so every request reaches a region's
function and Redis (the worst case; CloudFront hits are faster).

- Latency: per client region, p50/p99 of redirect latency vs the round trip to
  its nearest region (target: p50 within 2 ms), and the share answered by
  another region (target 0).
- Replication: from the start of a publish (upload, S3 event, sync) until each
  region serves the change, vs the one-way delay from the primary (target:
  p99 within it + 100 ms).
- Failover: a region's functions are killed; time until its clients are served
  elsewhere and until the monitor takes it out of rotation; recovery likewise.
The latency timeline around that drill is plotted to docs/global-latency.png.
"""

from __future__ import annotations

import http.client
import random
import tempfile
import threading
import time
from pathlib import Path

import requests

from functions.links.index import build_index
from functions.links.model import Link
from functions.links.source import load_links
from local.edge import CLIENT_REGION_HEADER, SERVED_BY_HEADER
from local.stack import LocalStack
from local.topology import Topology

from .report import table
from .summary import record

REPO = Path(__file__).resolve().parent.parent
PLOT = REPO / "docs" / "global-latency.png"
REQUESTS_PER_REGION = 1000
PUBLISHES = 20
MONITOR_INTERVAL = 1.0
DRILL_REGION = "us-west-2"
PROBE_SLUG = "bench/replication"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Client:
    """A user in `region` with a keep-alive connection to the edge (or to one region's API)."""

    def __init__(self, port: int, region: str, headers: dict | None = None):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.headers = {CLIENT_REGION_HEADER: region, **(headers or {})}

    def get(self, path: str) -> tuple[float, str, int, str | None]:
        """(latency ms, region that answered, status, Location)."""
        started = time.perf_counter()
        self.connection.request("GET", path, headers=self.headers)
        response = self.connection.getresponse()
        response.read()
        elapsed = (time.perf_counter() - started) * 1000
        served = response.getheader(SERVED_BY_HEADER, "?")
        return elapsed, served, response.status, response.getheader("Location")


def steady_state(stack: LocalStack, slugs: list[str]) -> list[list[str]]:
    rows = []
    rng = random.Random(1)
    worst, crossed = float("-inf"), 0
    for region in stack.topology.regions:
        client = Client(stack.edge.port, region)
        nearest = stack.topology.by_latency(region)[0]
        rtt = stack.topology.rtt_ms(region, nearest)
        samples, cross = [], 0
        for _ in range(REQUESTS_PER_REGION):
            elapsed, served, _, _ = client.get(f"/{rng.choice(slugs)}")
            samples.append(elapsed)
            cross += served != region
        p50, p99 = percentile(samples, 50), percentile(samples, 99)
        worst = max(worst, p50 - rtt)
        crossed += cross
        rows.append(
            [
                region,
                f"{rtt:.0f}",
                f"{p50:.2f}",
                f"{p99:.2f}",
                f"+{p50 - rtt:.2f}",
                "ok" if p50 - rtt <= 2 else "MISSED",
                f"{cross / len(samples):.1%}",
            ]
        )
    record(
        "through the edge, caching off: p50 - nearest round trip (worst client region)",
        "redis",
        f"+{worst:.2f} ms; {crossed} of {REQUESTS_PER_REGION * len(rows):,} answered cross-region",
        target="<= +2 ms, none cross-region",
        ok=worst <= 2 and crossed == 0,
    )
    return rows


def replication(stack: LocalStack, links: list[Link]) -> tuple[list[list[str]], float]:
    """Per region: from the primary's commit until the region's API serves the change."""
    delays: dict[str, list[float]] = {region: [] for region in stack.topology.regions}
    publish_to_everywhere = []
    key = f"link:{PROBE_SLUG}"
    for n in range(PUBLISHES):
        url = f"https://example.com/rev/{n}"
        seen: dict[str, float] = {}

        def watch_primary(url: str = url, seen: dict = seen) -> None:
            client = stack.primary.client()
            while (value := client.get(key)) is None or not value.endswith(url.encode()):
                time.sleep(0.0002)
            seen["primary"] = time.perf_counter()

        def watch(region: str, url: str = url, seen: dict = seen) -> None:
            client = Client(
                stack.hosts[region].port, region, {"x-origin-verify": stack.origin_verify}
            )
            while client.get(f"/{PROBE_SLUG}")[3] != url:
                time.sleep(0.0002)
            seen[region] = time.perf_counter()

        watchers = [threading.Thread(target=watch, args=(r,)) for r in stack.topology.regions]
        watchers.append(threading.Thread(target=watch_primary))
        for watcher in watchers:
            watcher.start()
        started = time.perf_counter()
        stack.publish(build_index([*links, Link(PROBE_SLUG, url)]))
        for watcher in watchers:
            watcher.join(30)
        for region in stack.topology.regions:
            delays[region].append((seen[region] - seen["primary"]) * 1000)
        publish_to_everywhere.append((max(seen.values()) - started) * 1000)
    rows = []
    for region, samples in delays.items():
        one_way = stack.topology.one_way_s(stack.topology.primary, region) * 1000
        p50, p99 = percentile(samples, 50), percentile(samples, 99)
        rows.append(
            [
                region,
                f"{one_way:.0f}",
                f"{p50:.0f}",
                f"{p99:.0f}",
                "ok" if p99 <= one_way + 100 else "MISSED",
            ]
        )
    return rows, percentile(publish_to_everywhere, 50)


def failover(
    stack: LocalStack, slug: str
) -> tuple[list[list[str]], list[tuple[float, str, float]]]:
    """Kill DRILL_REGION's functions mid-traffic, then restart them; returns the timeline too."""
    timeline: list[tuple[float, str, float]] = []
    stop = threading.Event()
    origin = time.perf_counter()

    def traffic(region: str) -> None:
        client = Client(stack.edge.port, region)
        while not stop.is_set():
            elapsed = client.get(f"/{slug}")[0]
            timeline.append((time.perf_counter() - origin, region, elapsed))
            time.sleep(0.02)

    def status() -> dict:
        response = requests.get(f"{stack.endpoints.edge_url}/_edge/status", timeout=5).json()
        return {r["region"]: r for r in response["regions"]}

    def served_elsewhere() -> bool:
        _, served, code, _ = Client(stack.edge.port, DRILL_REGION).get(f"/{slug}")
        return code < 500 and served != DRILL_REGION

    clients = [threading.Thread(target=traffic, args=(r,)) for r in stack.topology.regions]
    for client in clients:
        client.start()
    time.sleep(3)
    killed = time.perf_counter()
    kill_at = killed - origin
    stack.kill_region(DRILL_REGION)
    elsewhere = _wait(served_elsewhere) - killed
    out_of_rotation = _wait(lambda: not status()[DRILL_REGION]["healthy"]) - killed
    time.sleep(3)
    restarted = time.perf_counter()
    restart_at = restarted - origin
    stack.restart_region(DRILL_REGION)
    back = _wait(lambda: status()[DRILL_REGION]["healthy"]) - restarted
    time.sleep(3)
    stop.set()
    for client in clients:
        client.join()
    rows = [
        [
            "clients served elsewhere after the kill",
            f"{elsewhere * 1000:.0f} ms",
            "first request; incl. the next region's round trip",
        ],
        [
            "region out of rotation after the kill",
            f"{out_of_rotation * 1000:.0f} ms",
            f"<= 2 monitor intervals ({2 * MONITOR_INTERVAL * 1000:.0f} ms)",
        ],
        ["region back in rotation after restart", f"{back * 1000:.0f} ms", "incl. start-up"],
    ]
    _plot(timeline, kill_at, restart_at, stack)
    return rows, timeline


def _wait(predicate, timeout: float = 30) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if predicate():
            return time.perf_counter()
        time.sleep(0.005)
    raise TimeoutError("the drill did not complete")


def _plot(timeline, kill_at: float, restart_at: float, stack: LocalStack) -> None:
    import matplotlib  # noqa: PLC0415 - only the benchmark needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, axis = plt.subplots(figsize=(9, 4.5))
    for region in stack.topology.regions:
        points = [(t, ms) for t, r, ms in timeline if r == region]
        axis.plot(
            [t for t, _ in points],
            [ms for _, ms in points],
            ".",
            markersize=3,
            label=f"clients in {region}",
        )
    axis.axvspan(kill_at, restart_at, color="0.9", label=f"{DRILL_REGION} functions down")
    axis.set_xlabel("seconds")
    axis.set_ylabel("redirect latency through the edge (ms)")
    axis.set_yscale("log")
    axis.set_title("Local stack at real inter-region delays: a region fails and recovers")
    axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    PLOT.parent.mkdir(exist_ok=True)
    figure.savefig(PLOT, dpi=110)
    plt.close(figure)


def run() -> None:
    links = load_links([REPO / "links"])
    slugs = [link.slug for link in links if link.expires is None or link.expires > time.time()]
    with (
        tempfile.TemporaryDirectory(prefix="bench-global-") as tmp,
        LocalStack(
            Path(tmp),
            topology=Topology(scale=1.0),
            monitor_interval=MONITOR_INTERVAL,
            edge_port=0,
            cache_seconds=0,
        ) as stack,
    ):
        latency_rows = steady_state(stack, slugs)
        replication_rows, publish_p50 = replication(stack, links)
        failover_rows, _ = failover(stack, slugs[0])
    print(
        "Redirect latency through the edge, caching off "
        f"({REQUESTS_PER_REGION} requests per client region)"
    )
    print(
        table(
            [
                "client region",
                "nearest RTT ms",
                "p50 ms",
                "p99 ms",
                "p50 - RTT",
                "target +2 ms",
                "cross-region",
            ],
            latency_rows,
        )
    )
    print(f"\nReplication: the primary's commit -> served by each region ({PUBLISHES} publishes)")
    print(
        table(
            ["region", "one-way ms", "p50 ms", "p99 ms", "target one-way + 100 ms"],
            replication_rows,
        )
    )
    print(
        f"whole publish (S3 upload, replication to every bucket, S3 event, sync, "
        f"every region serving): p50 {publish_p50:.0f} ms"
    )
    print(f"\nFailover drill: {DRILL_REGION}'s functions killed, then restarted")
    print(table(["measure", "time", "target"], failover_rows))
    print(f"\nplot: {PLOT.relative_to(REPO)}")
