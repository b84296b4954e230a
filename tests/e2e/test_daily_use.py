"""The local stack as a developer keeps it open all day: idle is quiet, pages look right."""

from __future__ import annotations

import os
import re
import time

import pytest

from local.stack import LocalStack

from .conftest import Client

IDLE_WINDOW_S = 4.0


def usage(pid: int) -> tuple[float, int]:
    """(CPU seconds used so far, resident bytes) of a process, from /proc."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    cpu_s = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return cpu_s, rss


def children(stack: LocalStack) -> dict[str, int]:
    processes = [
        stack.s3_server,
        stack.primary,
        stack.sync_host,
        *stack.replicas.values(),
        *stack.hosts.values(),
    ]
    return {process.name: process.proc.pid for process in processes}


def test_idle_the_stack_does_almost_nothing(stack):
    """Idle (the edge still probes every region), no child burns CPU or grows.

    The local S3 grew ~1 MB/s and burned CPU when publishing was noticed by
    listing object versions 33 times a second; now S3 notifies a queue that
    is long-polled."""
    pids = children(stack)
    assert len(pids) == 9
    time.sleep(0.5)  # let the start settle
    before = {name: usage(pid) for name, pid in pids.items()}
    time.sleep(IDLE_WINDOW_S)
    after = {name: usage(pid) for name, pid in pids.items()}
    cpu = {name: after[name][0] - before[name][0] for name in pids}
    assert sum(cpu.values()) < 0.1 * IDLE_WINDOW_S, cpu  # under 10% of one core, all nine
    assert cpu["moto-s3"] < 0.02 * IDLE_WINDOW_S, cpu
    s3_growth = after["moto-s3"][1] - before["moto-s3"][1]
    assert s3_growth < 1_000_000, f"the local S3 grew {s3_growth} bytes in {IDLE_WINDOW_S} s"


@pytest.mark.parametrize("region", ["eu-west-1", "ap-southeast-1"])
def test_publishing_is_still_noticed_at_once(stack, region):
    """The long poll wakes on the upload: a publish is applied within a fraction of a second."""
    published = stack.publish()
    assert published.seconds < 1.0, published
    assert Client(stack, region).get("/docs").status_code == 302


def test_every_page_has_one_look_and_nothing_it_loads_is_missing(stack):
    """Start page, unknown link, expired link, static 404: the site's stylesheet and icon,
    and every asset they reference (and /favicon.ico, which browsers ask for) answers 200."""
    client = Client(stack, "us-west-2")
    pages = {
        "/": 200,
        "/no-such-link": 404,
        "/static/no-such-file.css": 404,
    }
    for path, status in pages.items():
        response = client.get(path)
        assert response.status_code == status, path
        assert '<link rel="stylesheet" href="/static/site.css">' in response.text, path
        for asset in re.findall(r'(?:href|src)="(/static/[^"]+)"', response.text):
            assert client.get(asset).status_code == 200, (path, asset)
    favicon = client.get("/favicon.ico")
    assert favicon.status_code == 200 and favicon.headers["Content-Type"] == "image/x-icon"
    assert favicon.content[:4] == b"\x00\x00\x01\x00"  # an icon resource


def test_the_not_found_page_offers_to_create_the_typed_link(stack):
    response = Client(stack, "ap-southeast-1").get("/Team/Brand-New")
    assert response.status_code == 404
    assert "go/team/brand-new" in response.text
    assert (
        'href="https://github.com/example/golinks/new/main?filename=links%2Fteam%2Fbrand-new.yaml&amp;'
        in response.text
    )
