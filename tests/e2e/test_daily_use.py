"""The local stack as a developer keeps it open all day: idle is quiet, pages look right."""

from __future__ import annotations

import os
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
