"""The local stack for end-to-end drills: every part real, delays scaled down 20x."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from functions.links.model import GONE_RETENTION_SECONDS, expand
from functions.links.source import load_links
from local.edge import CLIENT_REGION_HEADER, SERVED_BY_HEADER
from local.stack import LocalStack
from local.topology import Topology

REPO = Path(__file__).resolve().parents[2]
SCALE = 0.05
MONITOR_INTERVAL = 0.25


def start_stack(tmp_path_factory, name: str, router: str = "cloudflare") -> LocalStack:
    return LocalStack(
        tmp_path_factory.mktemp(name),
        topology=Topology(scale=SCALE),
        monitor_interval=MONITOR_INTERVAL,
        edge_port=0,
        cache_seconds=0,  # drills look through the edge cache at the regions
        router=router,
    ).start()


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[LocalStack]:
    local = start_stack(tmp_path_factory, "stack")
    yield local
    local.stop()


class Client:
    """A user somewhere in the world, talking to the edge."""

    def __init__(self, stack: LocalStack, region: str):
        self.stack, self.region = stack, region
        self.session = requests.Session()

    def get(self, path: str, **kwargs) -> requests.Response:
        headers = {CLIENT_REGION_HEADER: self.region, **kwargs.pop("headers", {})}
        return self.session.get(
            f"{self.stack.endpoints.edge_url}{path}",
            headers=headers,
            allow_redirects=False,
            timeout=10,
            **kwargs,
        )


def assert_every_link_resolves(stack: LocalStack) -> dict[str, set[str]]:
    """Every link of links/ from every client region; returns the regions that answered."""
    served: dict[str, set[str]] = {}
    now = time.time()
    for client_region in stack.topology.regions:
        client = Client(stack, client_region)
        for link in load_links([REPO / "links"]):
            response = client.get(f"/{link.slug}")
            if link.expires is not None and link.expires + GONE_RETENTION_SECONDS <= now:
                assert response.status_code == 404, (client_region, link.slug)  # forgotten
            elif link.expires is not None and link.expires <= now:
                assert response.status_code == 410, (client_region, link.slug)
            else:
                assert response.status_code == link.status, (client_region, link.slug)
                target = expand(link.url, "")  # a templated link's own slug: {path} empty
                assert response.headers["Location"].startswith(target), (client_region, link)
            served.setdefault(client_region, set()).add(response.headers[SERVED_BY_HEADER])
    return served


def publish(stack, links_dir, tmp_path, *extra: str, **options) -> subprocess.CompletedProcess:
    """CI's publish step (scripts/publish_links.py) against the local stack, as CI runs it."""
    return run_publisher(
        stack, tmp_path, "scripts.publish_links", str(links_dir), *extra, **options
    )


def run_publisher(
    stack, tmp_path, module: str, *args: str, env=None, outputs=None
) -> subprocess.CompletedProcess:
    """`python -m MODULE ARGS` as CI's publisher runs it: the stack's outputs (or `outputs`),
    waiting; `env` adds to its environment."""
    outputs_file = tmp_path / "outputs.json"
    outputs_file.write_text(json.dumps(outputs or stack.endpoints.stack_outputs()))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            *module.split(),
            *args,
            "--stack-outputs",
            str(outputs_file),
            "--header",
            f"x-origin-verify: {stack.origin_verify}",
            "--interval",
            "0.1",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=90,
        check=False,
        env={
            **os.environ,
            **stack.endpoints.publisher_env(),
            "PYTHONPATH": str(REPO),
            **(env or {}),
        },
    )
