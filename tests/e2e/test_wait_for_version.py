"""The wait-for-version script on the local stack: all regions catch up, or a report."""

from __future__ import annotations

import io
import json
import subprocess
import sys

from functions.links.index import build_index
from functions.links.model import Link
from functions.links.source import load_links
from scripts.wait_for_version import main, report, wait

from .conftest import REPO


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


def test_without_the_cloudfront_header_a_region_reports_403(stack):
    states = wait(stack.version, health_urls(stack), timeout=0.5, interval=0.2, out=io.StringIO())
    assert {s.http_status for s in states} == {403}
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
