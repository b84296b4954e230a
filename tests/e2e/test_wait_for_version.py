"""The wait-for-version script: every region catches up, or a per-region report.

First on bare parts (a real Redis primary, one real replica per region, each
behind the real health function; links published with the link CLI), then on
the whole local stack, then against endpoints that answer badly.
"""

from __future__ import annotations

import io
import json
import re
import socketserver
import subprocess
import sys
import threading
import time

import pytest

from functions.links.index import build_index
from functions.links.model import Link
from functions.links.source import load_links
from local.stack import FunctionHost
from scripts.wait_for_version import main, report, wait

from .conftest import REPO, VARIANTS

REGIONS = ("eu-west-1", "us-west-2", "ap-southeast-1")
ORIGIN_VERIFY = "wait-test-origin"


@pytest.fixture(
    scope="module",
    params=[variant for variant in VARIANTS if variant.router == "cloudflare"],
    ids=lambda variant: variant.id,
)
def variant(request):
    """The waiting asks each region's /healthz itself: the traffic router plays no part."""
    return request.param


# -- bare parts: Redis primary, a replica per region, the real health function ----------


@pytest.fixture
def regions(redis_factory, tmp_path):
    """region -> (its Redis replica, its health endpoint); plus the primary."""
    primary = redis_factory("primary")
    served = {}
    for region in REGIONS:
        replica = redis_factory(f"replica-{region}", replica_of=primary)
        env = {
            "AWS_REGION": region,
            "PRIMARY_REGION": REGIONS[0],
            "REDIS_URL": replica.url,
            "ORIGIN_VERIFY": ORIGIN_VERIFY,
            "LINK_INDEX_BUCKET": "",  # no S3 fallback: health reports Redis alone
        }
        host = FunctionHost(
            tmp_path / f"health-{region}",
            f"health-{region}",
            env,
            routes=["GET /healthz=functions.health.handler"],
        )
        served[region] = (replica, host.start())
    yield primary, served
    for _, host in served.values():
        host.stop()


def sync_links(primary, links_dir) -> str:
    """`python -m functions.links sync --redis-url <primary>`, as by hand; the new version."""
    result = subprocess.run(
        [sys.executable, "-m", "functions.links", "sync", "--redis-url", primary.url, links_dir],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return re.search(r"version ([0-9a-f]+) ", result.stdout).group(1)


def wait_script(served, version: str, timeout: float) -> subprocess.CompletedProcess:
    urls = [f"--url={region}={host.url}/healthz" for region, (_, host) in served.items()]
    return subprocess.run(
        [
            *(sys.executable, "-m", "scripts.wait_for_version", "--version", version, *urls),
            *("--header", f"x-origin-verify: {ORIGIN_VERIFY}"),
            *("--timeout", str(timeout), "--interval", "0.1"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


def rows(stdout: str) -> dict[str, list[str]]:
    """The report's rows by region, split on the table's two-space gaps."""
    table = stdout[stdout.index("waiting for link index") :].splitlines()[1:]
    return {cells[0]: cells for cells in (re.split(r"\s{2,}", line) for line in table)}


def links_dir(tmp_path, *extra_slugs: str):
    directory = tmp_path / f"links-{len(extra_slugs)}"
    directory.mkdir()
    lines = [(REPO / "links" / "company.yaml").read_text()]
    lines += [f"{slug}: https://example.com/{slug}\n" for slug in extra_slugs]
    (directory / "links.yaml").write_text("".join(lines))
    return str(directory)


def test_bare_parts_it_passes_once_every_replica_serves_the_published_version(regions, tmp_path):
    primary, served = regions
    version = sync_links(primary, links_dir(tmp_path))
    result = wait_script(served, version, timeout=20)
    assert result.returncode == 0, result.stdout + result.stderr
    for region in REGIONS:
        assert f"{region}: serving {version} after" in result.stdout
        assert rows(result.stdout)[region][1].startswith("ok after")


def test_bare_parts_a_cut_off_replica_and_a_dead_endpoint_fail_with_a_report(regions, tmp_path):
    primary, served = regions
    old = sync_links(primary, links_dir(tmp_path))
    for replica, _ in served.values():
        replica.wait_in_sync()
    served["us-west-2"][0].client().replicaof("NO", "ONE")  # replication to it is broken
    served["ap-southeast-1"][1].stop()  # its API is gone
    new = sync_links(primary, links_dir(tmp_path, "wait/new"))

    result = wait_script(served, new, timeout=2)
    assert result.returncode == 1, result.stdout + result.stderr
    table = rows(result.stdout)
    assert table["region"][:6] == [
        "region", "result", "HTTP", "status", "version seen", "last answer"
    ]  # fmt: skip
    assert table["eu-west-1"][1].startswith("ok after") and table["eu-west-1"][4] == new
    # Still answering, healthy, but serving what it had before replication broke.
    assert table["us-west-2"][1:5] == ["NOT SERVING", "200", "ok", old]
    assert re.fullmatch(r"\d\d:\d\d:\d\dZ", table["us-west-2"][5])
    # Never answered: no HTTP code, no version, the connection error.
    unreachable = table["ap-southeast-1"]
    assert unreachable[1:6] == ["NOT SERVING", "-", "-", "-", "never"]
    assert "Connection refused" in unreachable[6]


def test_bare_parts_a_region_whose_redis_is_down_reports_503(regions, tmp_path):
    primary, served = regions
    version = sync_links(primary, links_dir(tmp_path))
    served["ap-southeast-1"][0].stop()
    result = wait_script(served, version, timeout=1)
    assert result.returncode == 1
    down = rows(result.stdout)["ap-southeast-1"]
    assert down[1:5] == ["NOT SERVING", "503", "down", "-"] and down[6] == "HTTP 503"


# -- the whole local stack ---------------------------------------------------------------


def health_urls(stack) -> dict[str, str]:
    return {region: f"{host.url}/healthz" for region, host in stack.hosts.items()}


def run(stack, version: str, *extra: str) -> subprocess.CompletedProcess:
    urls = [f"--url={region}={url}" for region, url in health_urls(stack).items()]
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.wait_for_version",
            "--version",
            version,
            *urls,
            "--header",
            f"x-origin-verify: {stack.origin_verify}",
            "--interval",
            "0.1",
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


def index_with(slug: str) -> object:
    return build_index([*load_links([REPO / "links"]), Link(slug, f"https://example.com/{slug}")])


def test_it_passes_once_every_region_serves_the_new_version(stack):
    new = index_with("wait/all")
    stack.publish(new)
    result = run(stack, new.version, "--timeout", "20")
    assert result.returncode == 0, result.stdout + result.stderr
    for region in stack.topology.regions:
        assert f"{region}: serving {new.version}" in result.stdout
    assert "NOT SERVING" not in result.stdout


def test_a_region_cut_off_from_replication_fails_with_a_per_region_report(stack):
    old_version = stack.version
    stack.run(stack.proxies["ap-southeast-1"].cut())
    try:
        new = index_with("wait/cut")
        stack.publish(new)
        result = run(stack, new.version, "--timeout", "2")
        assert result.returncode == 1
        lines = {line.split()[0]: line for line in result.stdout.splitlines() if line}
        assert "NOT SERVING" in lines["ap-southeast-1"] and old_version in lines["ap-southeast-1"]
        assert "ok after" in lines["eu-west-1"] and "ok after" in lines["us-west-2"]
    finally:
        stack.run(stack.proxies["ap-southeast-1"].restore())
    stack.wait_until_served(new.version, timeout=20)


def test_a_region_that_is_down_is_reported_not_fatal(stack):
    stack.kill_region("us-west-2")
    try:
        out = io.StringIO()
        states = wait(
            stack.version,
            health_urls(stack),
            timeout=1,
            interval=0.2,
            headers={"x-origin-verify": stack.origin_verify},
            out=out,
        )
        table = report(states, stack.version)
        down = next(line for line in table.splitlines() if line.startswith("us-west-2"))
        assert "NOT SERVING" in down and "never" in down and "Connection refused" in down
    finally:
        stack.restart_region("us-west-2")
        stack.wait_until_in_rotation("us-west-2")


def test_without_the_cloudfront_header_a_region_tells_its_status_but_no_version(stack):
    """What a Route 53 health checker (which sends no headers) learns: up or not, no more."""
    states = wait(stack.version, health_urls(stack), timeout=0.5, interval=0.2, out=io.StringIO())
    assert {(s.http_status, s.status, s.version) for s in states} == {(200, "ok", None)}
    assert all(s.reached_after is None for s in states)


def test_region_urls_can_come_from_stack_outputs(stack, tmp_path):
    outputs = {"regions": {r: {"healthz_url": url} for r, url in health_urls(stack).items()}}
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    code = main(
        [
            "--version",
            stack.version,
            "--stack-outputs",
            str(path),
            "--timeout",
            "10",
            "--interval",
            "0.1",
            "--header",
            f"x-origin-verify: {stack.origin_verify}",
        ]
    )
    assert code == 0


def test_usage_errors_are_clear(tmp_path):
    for argv, message in [
        (["--version", "v"], "give --url REGION=URL"),
        (["--version", "v", "--url", "eu-west-1"], "--url takes REGION=http(s)://"),
        (["--version", "v", "--stack-outputs", str(tmp_path / "none.json")], "cannot read region"),
        (["--version", "v", "--url", "a=http://x", "--header", "novalue"], "--header takes"),
    ]:
        result = subprocess.run(
            [sys.executable, "-m", "scripts.wait_for_version", *argv],
            capture_output=True,
            text=True,
            cwd=REPO,
            check=False,
        )
        assert result.returncode == 2 and message in result.stderr, result.stderr


# -- endpoints that answer badly ---------------------------------------------------------


class Misbehaving(socketserver.BaseRequestHandler):
    """Raw answers a broken proxy or a dying host could give, chosen by the path."""

    def handle(self):
        path = self.request.recv(4096).split(b" ")[1].decode()
        if path == "/slow":
            time.sleep(3)
        http_ok = b"HTTP/1.1 200 OK\r\nConnection: close\r\n"
        answers = {
            "/not-json": http_ok + b"Content-Length: 6\r\n\r\n<html>",
            "/a-list": http_ok + b"Content-Length: 2\r\n\r\n[]",
            "/odd-types": http_ok + b'Content-Length: 29\r\n\r\n{"status": [1], "version": 7}',
            "/not-http": b"hello\r\n",
            "/cut-body": http_ok + b'Content-Length: 100\r\n\r\n{"status"',
            "/slow": http_ok + b"Content-Length: 2\r\n\r\n{}",
        }
        self.request.sendall(answers[path])


@pytest.fixture
def misbehaving():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Misbehaving)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_bad_answers_are_reported_per_region_and_never_crash_the_wait(misbehaving, monkeypatch):
    crashes = []
    monkeypatch.setattr(threading, "excepthook", crashes.append)
    paths = ("/not-json", "/a-list", "/odd-types", "/not-http", "/cut-body", "/slow")
    urls = {path.strip("/"): f"{misbehaving}{path}" for path in paths}
    states = wait("v1", urls, timeout=1.5, interval=0.2, out=io.StringIO())
    assert crashes == []
    by_region = {state.region: state for state in states}
    assert not any(state.reached_after for state in states)
    assert by_region["not-json"].error == "HTTP 200: not the health JSON"
    assert by_region["a-list"].error == "HTTP 200: not the health JSON"
    assert (by_region["odd-types"].status, by_region["odd-types"].version) == ("[1]", "7")
    assert by_region["not-http"].http_status is None and by_region["not-http"].error
    assert by_region["cut-body"].http_status is None and by_region["cut-body"].error
    assert "timed out" in by_region["slow"].error and by_region["slow"].answered_at is None
    table = report(states, "v1")
    assert all(f"\n{region} " in table for region in urls)
