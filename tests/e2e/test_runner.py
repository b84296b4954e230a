"""`python -m local` as a developer runs it: the terminal, `status`, `region down|up`, a port
in use, and a `kill -9` of the runner that leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from local.servers import ChildRecord, start_time, wait_until

from .conftest import MONITOR_INTERVAL, REPO, SCALE


class Runner:
    """`python -m local` in its own process, its terminal written to a file."""

    def __init__(self, state_dir: Path, *extra: str):
        self.state_dir = state_dir
        self.terminal = state_dir.parent / "terminal.txt"
        argv = [sys.executable, "-m", "local", "--scale", str(SCALE), "--port", "0"]
        argv += ["--interval", str(MONITOR_INTERVAL), "--state-dir", str(state_dir), *extra]
        with self.terminal.open("w") as out:
            self.proc = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.terminal.read_text()

    def wait_for(self, text: str, timeout: float = 60) -> None:
        def shown() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"the runner exited:\n{self.output()}")
            return text in self.output()

        wait_until(shown, timeout, repr(text))

    def command(self, *args: str) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "local", *args, "--state-dir", str(self.state_dir)]
        return subprocess.run(
            argv, check=False, cwd=REPO, capture_output=True, text=True, timeout=90
        )

    def children(self) -> dict[str, int]:
        """name -> PID of each child as recorded (the latest start of each)."""
        record = (self.state_dir / "children.jsonl").read_text().splitlines()
        return {entry["name"]: entry["pid"] for entry in map(json.loads, record)}

    def state(self) -> dict:
        return json.loads((self.state_dir / "state.json").read_text())


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    runner = Runner(tmp_path_factory.mktemp("runner") / "stack")
    runner.wait_for("Ctrl-C stops everything.")
    yield runner
    if runner.proc.poll() is None:
        runner.proc.terminate()  # as Ctrl-C; a background job ignores SIGINT
        runner.proc.wait(30)


def test_status_is_a_table_and_fails_while_a_region_is_down(runner):
    healthy = runner.command("status")
    assert healthy.returncode == 0, healthy.stderr
    lines = healthy.stdout.splitlines()
    assert lines[0].split() == ["REGION", "HEALTH", "VERSION", "LINKS", "REPLICA", "LAG"]
    for region in ("eu-west-1", "us-west-2", "ap-southeast-1"):
        row = next(line for line in lines if line.startswith(region))
        assert " ok " in row and "in sync" in row, row
    assert "every region is healthy" in healthy.stdout

    down = runner.command("region", "down", "us-west-2")
    assert down.returncode == 0 and "us-west-2 is down" in down.stdout, down.stderr
    unhealthy = runner.command("status")
    assert unhealthy.returncode == 1
    row = next(line for line in unhealthy.stdout.splitlines() if line.startswith("us-west-2"))
    assert "out of rotation" in row
    runner.wait_for("edge: us-west-2 out of rotation")

    up = runner.command("region", "up", "us-west-2")
    assert up.returncode == 0 and "back in rotation" in up.stdout, up.stderr
    assert runner.command("status").returncode == 0
    bad = runner.command("region", "sideways", "us-west-2")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_a_region_that_dies_is_reported_in_the_terminal(runner):
    pid = runner.children()["functions-ap-southeast-1"]
    os.kill(pid, signal.SIGKILL)
    runner.wait_for(
        f"ap-southeast-1: its functions process (pid {pid}) died (killed by SIGKILL)", timeout=10
    )
    assert runner.command("region", "up", "ap-southeast-1").returncode == 0


def test_bad_requests_are_one_line_each_in_the_terminal(runner):
    port = int(runner.state()["edge_url"].rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET http://evil.com/docs HTTP/1.1\r\nHost: evil.com\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400")
    runner.wait_for("edge: 400 for a bad request from 127.0.0.1: the request target must be a path")
    assert "Traceback" not in runner.output()


def test_a_port_in_use_is_reported_at_once_with_the_fix(runner, tmp_path):
    busy = runner.state()["edge_url"].rsplit(":", 1)[1]
    argv = [sys.executable, "-m", "local", "--port", busy, "--state-dir", str(tmp_path / "s")]
    started = time.monotonic()
    result = subprocess.run(argv, check=False, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"port {busy} is already in use" in result.stderr and "--port" in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 10
    assert not (tmp_path / "s").exists()  # nothing was started


def test_kill_9_of_the_runner_takes_every_child_with_it(runner):
    children = runner.children()
    assert len(children) == 9
    edge_url = runner.state()["edge_url"]
    runner.proc.kill()
    runner.proc.wait()
    wait_until(
        lambda: all(start_time(pid) is None for pid in children.values()),
        5,
        "every child of the killed runner to die",
    )
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{edge_url}/docs", timeout=2)


def test_a_start_stops_what_an_earlier_run_left_by_its_record(tmp_path):
    """A child that outlived its run (e.g. started by a version without the parent-death
    signal) is stopped by PID and start time; a reused PID belongs to someone else."""
    survivor = subprocess.Popen(["sleep", "60"], start_new_session=True)
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        record = ChildRecord(tmp_path / "children.jsonl")
        record.add("redis-us-west-2", survivor.pid)
        with record.path.open("a") as out:  # same PID, another process: not ours to stop
            out.write(json.dumps({"name": "x", "pid": bystander.pid, "start_time": 1}) + "\n")
        assert record.stop_leftovers() == [f"redis-us-west-2 (pid {survivor.pid})"]
        assert survivor.wait(5) == -signal.SIGKILL
        assert bystander.poll() is None
        assert not record.path.exists() and record.stop_leftovers() == []
    finally:
        bystander.kill()
        bystander.wait()


def test_the_dynamodb_store_runs_publishes_and_reports_each_replica(tmp_path):
    """`python -m local --store dynamodb`: a table replica per region in the status, `region
    down|up`, `python -m local publish` (make publish), and a kill -9 leaves nothing."""
    runner = Runner(tmp_path / "stack", "--store", "dynamodb")
    try:
        runner.wait_for("Ctrl-C stops everything.")
        assert "a DynamoDB table replica per region" in runner.output()
        healthy = runner.command("status")
        assert healthy.returncode == 0, healthy.stderr
        for region in ("eu-west-1", "us-west-2", "ap-southeast-1"):
            row = next(line for line in healthy.stdout.splitlines() if line.startswith(region))
            assert " ok " in row and "in sync" in row, row

        published = runner.command("publish")
        assert published.returncode == 0, published.stdout + published.stderr
        assert "NOT SERVING" not in published.stdout

        assert runner.command("region", "down", "us-west-2").returncode == 0
        row = next(
            line for line in runner.command("status").stdout.splitlines() if "us-west-2" in line
        )
        assert "out of rotation" in row
        assert runner.command("region", "up", "us-west-2").returncode == 0
        assert runner.command("status").returncode == 0

        children = runner.children()
        assert {f"dynamodb-{r}" for r in ("eu-west-1", "us-west-2", "ap-southeast-1")} <= set(
            children
        )
        assert not any(name.startswith("redis") for name in children)
        runner.proc.kill()
        runner.proc.wait()
        wait_until(
            lambda: all(start_time(pid) is None for pid in children.values()),
            5,
            "every child of the killed runner to die",
        )
    finally:
        if runner.proc.poll() is None:
            runner.proc.terminate()
            runner.proc.wait(30)
