"""Drills on the local stack: regions, replicas and the primary die; publishes get killed.

Each runs for every variant (conftest.VARIANTS): behind Cloudflare's load balancer and behind
Route 53 + one CloudFront with the Lambda@Edge router, on Redis and on DynamoDB. Expectations
differ only where the routers do (how soon a dead region is taken out, what the health
checks can read, one distribution's cache against one per region) and where the stores do
(a killed publish is caught in the act differently; DynamoDB's items replicate one by one,
so a region can be left behind on a whole older version)."""

from __future__ import annotations

import signal
import threading
import time

import pytest
import redis

from functions.links.dynamo_items import KEY, WRITTEN
from functions.links.dynamo_items import META_KEY as TABLE_META_KEY
from functions.links.index import build_index
from functions.links.model import GONE_RETENTION_SECONDS, META_KEY, Link, encode_value
from functions.links.source import load_links
from local.control import status_report
from local.edge import CACHE_HEADER, SERVED_BY_HEADER
from local.route53_edge import ROUTE53_THRESHOLD, Route53Edge
from local.servers import wait_until
from local.stack import PublishFailed

from .conftest import (
    MONITOR_INTERVAL,
    REPO,
    Client,
    assert_every_link_resolves,
    detection_bounds,
    edge_status,
    start_stack,
    wait_until_back,
    wait_until_out,
)

pytestmark = pytest.mark.stores("elasticache", "dynamodb")


@pytest.mark.smoke
def test_steady_state_every_client_is_served_by_its_own_region(stack):
    served = assert_every_link_resolves(stack)
    assert served == {region: {region} for region in stack.topology.regions}
    status = edge_status(stack)
    assert {r: (s["healthy"], s["status"]) for r, s in status.items()} == {
        region: (True, "ok") for region in stack.topology.regions
    }
    # Cloudflare's monitors send the origin-verify header and read the version served;
    # Route 53's health checkers cannot send it and see a region's status alone.
    seen_version = stack.version if stack.router == "cloudflare" else None
    assert {s["version"] for s in status.values()} == {seen_version}
    assert set(stack.served_versions().values()) == {stack.version}
    table, every_region_healthy = status_report(stack.endpoints)  # python -m local status
    assert every_region_healthy and table.count(stack.version) == len(stack.topology.regions)
    whole = Client(stack, "eu-west-1").get("/_edge/status").json()
    if stack.router == "route53":
        assert isinstance(stack.edge, Route53Edge)
        assert (whole["router"], whole["failure_threshold"]) == ("route53", ROUTE53_THRESHOLD)
    else:
        assert "router" not in whole and not isinstance(stack.edge, Route53Edge)


def test_the_client_round_trip_is_simulated(stack):
    for region, expected_ms in [("eu-west-1", 2 * 0.05), ("ap-southeast-1", 2 * 0.05)]:
        client = Client(stack, region)
        started = time.perf_counter()
        client.get("/docs")
        assert (time.perf_counter() - started) * 1000 >= expected_ms
    stack.kill_region("ap-southeast-1")
    try:
        wait_until_out(stack, "ap-southeast-1", since=time.monotonic())
        started = time.perf_counter()
        response = Client(stack, "ap-southeast-1").get("/docs")
        elapsed_ms = (time.perf_counter() - started) * 1000
        assert response.headers[SERVED_BY_HEADER] == "us-west-2"  # 160 ms beats 182 ms
        assert elapsed_ms >= stack.topology.rtt_ms("ap-southeast-1", "us-west-2")
    finally:
        stack.restart_region("ap-southeast-1")
        wait_until_back(stack, "ap-southeast-1")


def test_unknown_client_regions_and_the_static_site(stack):
    client = Client(stack, "eu-west-1")
    assert Client(stack, "mars-1").get("/docs").status_code == 400
    home = client.get("/")
    assert home.status_code == 200 and "text/html" in home.headers["Content-Type"]
    assert client.get("/static/404.html").status_code == 200
    # Cloudflare: the client's own region's CloudFront and bucket. Route 53: the one
    # distribution's static-site origin group, the primary region's bucket first.
    far = Client(stack, "ap-southeast-1").get("/")
    site_region = stack.topology.primary if stack.router == "route53" else "ap-southeast-1"
    assert far.status_code == 200 and far.headers[SERVED_BY_HEADER] == site_region
    missing = client.get("/static/nope.css")
    assert missing.status_code == 404 and "text/html" in missing.headers["Content-Type"]
    unknown = client.get("/no-such-link")
    assert unknown.status_code == 404 and "Location" not in unknown.headers
    # A method no short link takes: the function refuses it behind a regional CloudFront
    # (which allows every method); the one distribution's origin groups allow none of it.
    posted = client.session.post(f"{stack.endpoints.edge_url}/docs", timeout=10)
    assert posted.status_code == (403 if stack.router == "route53" else 405)
    for region in stack.topology.regions:  # the stack's own publish wrote the directory
        assert Client(stack, region).get("/_links.json").json()["version"] == stack.version


@pytest.mark.smoke
def test_a_region_whose_functions_die_leaves_the_rotation_and_comes_back(stack):
    assert_every_link_resolves(stack)
    stack.kill_region("us-west-2")
    killed = time.monotonic()
    if stack.router == "route53":
        # Refused at once: CloudFront's failover origin sends it on before Route 53 notices.
        moved = Client(stack, "us-west-2").get("/docs")
        assert moved.status_code == 302 and moved.headers[SERVED_BY_HEADER] == "eu-west-1"
    detected = wait_until_out(stack, "us-west-2", since=killed)
    earliest, latest = detection_bounds(stack)
    assert earliest <= detected <= latest
    served = assert_every_link_resolves(stack)
    assert served["us-west-2"] == {"eu-west-1"}  # the next-nearest region (118 ms < 160 ms)
    assert served["eu-west-1"] == {"eu-west-1"} and served["ap-southeast-1"] == {"ap-southeast-1"}

    stack.restart_region("us-west-2")
    restarted = time.monotonic()
    wait_until(lambda: edge_status(stack)["us-west-2"]["healthy"], 5, "the region to return")
    # one good probe (Cloudflare) or `threshold` good checks in a row (Route 53), + start-up
    checks = ROUTE53_THRESHOLD if stack.router == "route53" else 1
    assert time.monotonic() - restarted <= (checks + 1) * MONITOR_INTERVAL + 2
    wait_until_back(stack, "us-west-2")
    assert assert_every_link_resolves(stack)["us-west-2"] == {"us-west-2"}


def test_a_dead_replica_leaves_its_region_serving_from_s3_degraded(stack):
    stack.kill_replica("ap-southeast-1")
    try:
        health = stack.region_health("ap-southeast-1")
        assert (health["status"], health["source"]) == ("degraded", "s3-fallback")
        assert health["version"] == stack.version
        wait_until(
            lambda: edge_status(stack)["ap-southeast-1"]["status"] == "degraded",
            5,
            "the edge to see the degraded region",
        )
        # Its first answers without Redis load the S3 index, a wait not scaled like the
        # simulated ones: health checks queued behind it may have timed out. Steady, the
        # degraded region is in rotation and its clients are sent to it.
        wait_until_back(stack, "ap-southeast-1")
        served = assert_every_link_resolves(stack)
        assert served["ap-southeast-1"] == {"ap-southeast-1"}  # degraded still serves
    finally:
        stack.restart_replica("ap-southeast-1")
    wait_until(
        lambda: stack.region_health("ap-southeast-1")["status"] == "ok",
        10,
        "the region to return to its store",
    )
    assert stack.region_health("ap-southeast-1")["source"] == stack.store_source
    assert_every_link_resolves(stack)


@pytest.mark.smoke
def test_published_edits_reach_every_region(stack):
    links = load_links([REPO / "links"])
    extra = Link("drill/new-link", "https://example.com/drill")
    stack.publish(build_index([*links, extra]))
    stack.wait_until_served(stack.version, timeout=10)
    for region in stack.topology.regions:
        response = Client(stack, region).get("/drill/new-link")
        assert response.status_code == 302 and response.headers["Location"] == extra.url
    stack.publish(build_index(links))
    stack.wait_until_served(stack.version, timeout=10)
    assert Client(stack, "us-west-2").get("/drill/new-link").status_code == 404


@pytest.mark.stores("elasticache")  # the routers' caches: the same whatever the store
def test_the_edge_caches_redirects_like_cloudfront(tmp_path_factory, variant):
    cached = start_stack(tmp_path_factory, "cached", variant, cache_seconds=None)
    try:
        client = Client(cached, "eu-west-1")
        first, second = client.get("/docs"), client.get("/docs")
        assert (first.headers[CACHE_HEADER], second.headers[CACHE_HEADER]) == ("miss", "hit")
        assert second.headers["Location"] == first.headers["Location"]
        assert int(second.headers["Age"]) >= 0
        elsewhere = Client(cached, "us-west-2").get("/docs")
        # Cloudflare steers it to us-west-2's own CloudFront; with Route 53 every viewer
        # shares the one distribution, whose cache already holds it.
        route53 = variant.router == "route53"
        assert elsewhere.headers[CACHE_HEADER] == ("hit" if route53 else "miss")
        # a hit reaches no region: it is eu-west-1's answer, from the cache
        assert elsewhere.headers[SERVED_BY_HEADER] == ("eu-west-1" if route53 else "us-west-2")
        assert elsewhere.headers["Location"] == first.headers["Location"]
        assert client.get("/_edge/status").headers.get(CACHE_HEADER) is None
    finally:
        cached.stop()


@pytest.fixture
def own_stack(tmp_path_factory, variant):
    local = start_stack(tmp_path_factory, "drill", variant)
    yield local
    local.stop()


def test_the_primary_dies_reads_continue_publishing_fails_loudly_promotion_restores_writes(
    own_stack,
):
    """Redis: the Global Datastore's primary dies. DynamoDB: the primary region's table
    becomes unreachable (that region serves from S3 meanwhile, and gets the new version
    once it is back)."""
    stack = own_stack
    links = load_links([REPO / "links"])
    old = build_index(links)
    stack.kill_primary()
    assert_every_link_resolves(stack)  # every region still serves reads

    changed = build_index([*links, Link("after/failover", "https://example.com/failover")])
    with pytest.raises(PublishFailed):
        stack.publish(changed)
    assert set(stack.served_versions().values()) == {old.version}

    stack.promote("us-west-2")  # the runbook: move the writer, re-point the program
    reachable = stack.topology.regions
    if stack.store == "elasticache":
        stack.publish(changed)
    else:
        # The old writer's region cannot be read back: the others flip, it is named and
        # stays on its whole old version (serving from S3 meanwhile).
        with pytest.raises(PublishFailed, match="not yet served in eu-west-1"):
            stack.publish(changed)
        reachable = ("us-west-2", "ap-southeast-1")
        wait_until(
            lambda: all(stack.region_health(r)["version"] == changed.version for r in reachable),
            15,
            "the reachable regions to serve the new version",
        )
        assert stack.region_health("eu-west-1")["status"] == "degraded"
        stack.restart_replica("eu-west-1")  # back: what it missed arrives, the retry flips it
        again = stack.publish(changed).sync_result["results"][0]
        assert (again["status"], again["pending_regions"]) == ("unchanged", [])
    stack.wait_until_served(changed.version, timeout=15)
    for region in stack.topology.regions:
        response = Client(stack, region).get("/after/failover")
        assert response.status_code == 302, region
    assert {stack.region_health(r)["source"] for r in reachable} == {stack.store_source}
    assert_every_link_resolves(stack)


@pytest.mark.stores("elasticache")
def test_a_publish_killed_mid_way_never_shows_a_mix_and_the_next_one_converges(own_stack):
    stack = own_stack
    assert_every_link_resolves(stack)
    old = build_index(load_links([REPO / "links"]))
    big_links = [Link(f"bulk/{i}", f"https://example.com/bulk/{i}") for i in range(150_000)]
    new = build_index(big_links + list(old.links))
    sample = [f"link:bulk/{i}" for i in range(0, 150_000, 4999)]
    expected_new = [encode_value(big_links[i]) for i in range(0, 150_000, 4999)]
    mixes, snapshots, stop = [], [], threading.Event()

    def watch(region: str) -> None:
        client = redis.Redis.from_url(stack.replicas[region].url)
        while not stop.is_set():
            pipe = client.pipeline(transaction=True)
            version, values = pipe.hget(META_KEY, "version").mget(sample).execute()
            version = version and version.decode()
            snapshots.append(version)
            ok = values == expected_new if version == new.version else not any(values)
            if not ok:
                mixes.append((region, version))

    watchers = [threading.Thread(target=watch, args=(r,)) for r in stack.topology.regions]
    for watcher in watchers:
        watcher.start()
    try:
        publishing = threading.Thread(target=lambda: _publish_expecting_failure(stack, new))
        publishing.start()
        primary = stack.primary.client()
        wait_until(
            lambda: any("x" in c["flags"] for c in primary.client_list()),
            60,
            "the sync to open its transaction",
            interval=0.001,
        )
        stack.sync_host.proc.send_signal(signal.SIGKILL)
        publishing.join(30)
        time.sleep(0.3)
        assert set(stack.served_versions().values()) == {old.version}

        stack.sync_host.start()
        stack.publish(new)
        stack.wait_until_served(new.version, timeout=30)
        time.sleep(0.2)
    finally:
        stop.set()
        for watcher in watchers:
            watcher.join()
    assert mixes == []
    assert {old.version, new.version} <= set(snapshots)
    assert_every_link_resolves(stack)


def _publish_expecting_failure(stack, index) -> None:
    with pytest.raises(PublishFailed):
        stack.publish(index)


def test_expired_links_answer_410_then_404_in_every_region(stack):
    """Like Redis's TTL on the DynamoDB store too: gone for 30 days, then unknown."""
    links = load_links([REPO / "links"])
    now = int(time.time())
    expiring = [
        Link("drill/gone", "https://example.com/gone", expires=now - 3600),
        Link("drill/ending", "https://example.com/end", expires=now - GONE_RETENTION_SECONDS + 60),
        Link("drill/forgotten", "https://example.com/x", expires=now - GONE_RETENTION_SECONDS - 1),
        Link("drill/soon", "https://example.com/soon", expires=now + 3600),
    ]
    stack.publish(build_index([*links, *expiring]))
    stack.wait_until_served(stack.version, timeout=10)
    try:
        for region in stack.topology.regions:
            client = Client(stack, region)
            answers = {link.slug: client.get(f"/{link.slug}").status_code for link in expiring}
            assert answers == {
                "drill/gone": 410,
                "drill/ending": 410,
                "drill/forgotten": 404,
                "drill/soon": 302,
            }, region
    finally:
        stack.publish(build_index(links))
        stack.wait_until_served(stack.version, timeout=10)


class VersionWatchers:
    """In every region, a reader that goes through DynamoLinks as the redirect function does,
    checking each sample it reads against the version its region's pointer names."""

    def __init__(self, stack, sample: list[str], expected: dict[str, dict[str, str | None]]):
        self.stack, self.sample, self.expected = stack, sample, expected
        self.mixes: list[tuple] = []
        self.seen: dict[str, list[str]] = {region: [] for region in stack.topology.regions}
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._watch, args=(region,)) for region in self.seen
        ]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _watch(self, region: str) -> None:
        reader = self.stack.dynamodb.reader(region, refresh_s=0.01)
        while not self._stop.is_set():
            links, served = reader.lookup_many(self.sample)
            got = [link and link.url for link in links]
            expected = self.expected.get(served.version, {})
            if got != [expected.get(slug) for slug in self.sample]:
                self.mixes.append((region, served.version, got))
            if not self.seen[region] or self.seen[region][-1] != served.version:
                self.seen[region].append(served.version)
            time.sleep(0.01)  # leave the local DynamoDBs to the publish being drilled


def bulk(count: int, revision: int = 1) -> list[Link]:
    return [Link(f"bulk/{i}", f"https://example.com/bulk/{i}/r{revision}") for i in range(count)]


def urls(index) -> dict[str, str]:
    return {link.slug: link.url for link in index.links}


@pytest.mark.stores("dynamodb")
def test_a_publish_killed_mid_way_on_dynamodb_never_shows_a_mix_and_the_next_converges(stack):
    links = load_links([REPO / "links"])
    old = build_index([*links, *bulk(2000)])
    stack.publish(old)
    stack.wait_until_served(old.version)
    new = build_index([*links, *bulk(2000, revision=2)])
    sample = [f"bulk/{i}" for i in range(0, 2000, 67)]
    primary = stack.dynamodb.client(stack.primary_region)

    def item(key: str) -> dict:
        return primary.get_item(
            TableName=stack.dynamodb.table, Key={KEY: {"S": key}}, ConsistentRead=True
        )["Item"]

    generation = int(item(TABLE_META_KEY)["g"]["N"]) + 1  # the one the new publish writes

    def written(slug: str) -> bool:
        return int(item(slug)[WRITTEN]["N"]) == generation

    try:
        with VersionWatchers(stack, sample, {v.version: urls(v) for v in (old, new)}) as watchers:
            publishing = threading.Thread(target=lambda: _publish_expecting_failure(stack, new))
            publishing.start()
            wait_until(lambda: written("bulk/0"), 60, "the sync to write", interval=0.001)
            stack.sync_host.proc.send_signal(signal.SIGKILL)
            publishing.join(30)
            # Killed half-way: the items are written in slug order, the last one is not.
            assert not written(max(slug for slug in urls(new) if slug.startswith("bulk/")))
            time.sleep(0.3)
            assert set(stack.served_versions().values()) == {old.version}

            stack.sync_host.start()
            lease_until = float(item(TABLE_META_KEY)["lease_until"]["N"])
            time.sleep(max(0.0, lease_until - time.time()))  # the killed run's lease runs out
            stack.publish(new)
            stack.wait_until_served(new.version, timeout=30)
            time.sleep(0.2)
        assert watchers.mixes == []
        assert all(seen == [old.version, new.version] for seen in watchers.seen.values())
        assert_every_link_resolves(stack)
    finally:
        if not stack.sync_host.running:
            stack.sync_host.start()
        stack.publish(build_index(links))
        stack.wait_until_served(stack.version, timeout=30)


def table_health(stack, region: str) -> dict:
    """The region's health report as its table answers it. A probe whose read times out on a
    loaded machine reports the S3 index instead (degraded: a whole version too, the newest
    file), which says nothing of what the table serves."""
    reports: list[dict] = []
    wait_until(
        lambda: reports.append(stack.region_health(region)) or reports[-1]["source"] == "dynamodb",
        10,
        f"{region} to answer from its table",
    )
    return reports[-1]


@pytest.mark.stores("dynamodb")
def test_items_delayed_and_reordered_to_a_region_never_show_a_mix_and_converge(stack):
    """Replication to us-west-2 is held while a publish runs, then released: the region keeps
    the whole old version, gets the items in any order, and the retried publish flips it."""
    links = load_links([REPO / "links"])
    old = build_index([*links, *bulk(400)])
    stack.publish(old)
    stack.wait_until_served(old.version)
    new = build_index([*links, *bulk(300, revision=2), *bulk(500)[400:]])  # changed, added
    sample = [f"bulk/{i}" for i in range(0, 500, 17)]
    replication = stack.dynamodb.replication
    reordered = replication.reordered
    expected = {v.version: urls(v) for v in (old, new)}
    try:
        with VersionWatchers(stack, sample, expected) as watchers:
            replication.hold("us-west-2")
            publishing = threading.Thread(target=stack.publish, args=(new,))
            publishing.start()
            wait_until(
                lambda: all(
                    stack.region_health(r)["version"] == new.version
                    for r in ("eu-west-1", "ap-southeast-1")
                ),
                30,
                "the other regions to flip",
            )
            time.sleep(0.5)  # us-west-2 stays on its whole old version meanwhile
            assert table_health(stack, "us-west-2")["version"] == old.version
            replication.release("us-west-2")  # what it missed arrives, in any order
            publishing.join(60)
            stack.wait_until_served(new.version, timeout=30)
        assert stack.version == new.version  # the publish returned: us-west-2 was flipped
        assert watchers.mixes == []
        assert watchers.seen["us-west-2"] == [old.version, new.version]
        assert replication.reordered > reordered  # items did arrive out of order
    finally:
        replication.release("us-west-2")
        stack.publish(build_index(links))
        stack.wait_until_served(stack.version, timeout=10)
