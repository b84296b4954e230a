"""The local stack for end-to-end drills: every part real, delays scaled down 20x.

Every drill runs once per deployment variant (`VARIANTS`): the module-scoped
`variant` fixture parametrizes `stack` and every fixture that starts its own
stack, so a module starts one stack per variant. A variant marked `smoke` runs
only the tests marked `@pytest.mark.smoke`; a variant's link store runs only the
tests whose `@pytest.mark.stores(...)` (on the test or its module) names it,
elasticache alone when unmarked. For `make test`'s parallel workers,
the tests sharing a module's stack are kept on one worker (one xdist group per
module and variant).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from functions.links.model import GONE_RETENTION_SECONDS, expand
from functions.links.source import load_links
from local.edge import CLIENT_REGION_HEADER, SERVED_BY_HEADER
from local.servers import wait_until
from local.stack import LocalStack
from local.topology import Topology

REPO = Path(__file__).resolve().parents[2]
SCALE = 0.05
MONITOR_INTERVAL = 0.25


@dataclass(frozen=True)
class Variant:
    """One way a stack can be deployed, as the drills run it.

    `router`: the `trafficRouter` (cloudflare | route53). `store`: the `linkStore`
    (elasticache | dynamodb). `smoke`: run only the tests marked smoke (a combination
    that the full variants already cover part by part).
    """

    router: str = "cloudflare"
    store: str = "elasticache"
    smoke: bool = False

    @property
    def id(self) -> str:
        return self.router if self.store == "elasticache" else f"{self.router}-{self.store}"

    def stack_options(self) -> dict:
        """LocalStack's arguments for this variant."""
        return {"router": self.router, "store": self.store}


#: The variants every drill runs against: each router and each store in full, their last
#: combination as a smoke test.
VARIANTS = (
    Variant(router="cloudflare"),
    Variant(router="route53"),
    Variant(router="cloudflare", store="dynamodb"),
    Variant(router="route53", store="dynamodb", smoke=True),
)


@pytest.fixture(scope="module", params=VARIANTS, ids=lambda variant: variant.id)
def variant(request) -> Variant:
    return request.param


def pytest_collection_modifyitems(config, items):
    """Smoke variants run the smoke tests only, a store's variants the tests of that store;
    a module's stack stays on one xdist worker."""
    deselected = []
    for item in items:
        variant = getattr(item, "callspec", None) and item.callspec.params.get("variant")
        if variant is None:
            continue
        stores = item.get_closest_marker("stores")
        runs_on = stores.args if stores else ("elasticache",)
        smoke_only = variant.smoke and item.get_closest_marker("smoke") is None
        if variant.store not in runs_on or smoke_only:
            deselected.append(item)
        elif "stack" in item.fixturenames:
            item.add_marker(pytest.mark.xdist_group(f"{item.module.__name__}-{variant.id}"))
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        dropped = set(deselected)
        items[:] = [item for item in items if item not in dropped]


def start_stack(tmp_path_factory, name: str, variant: Variant = Variant(), **options) -> LocalStack:
    """A stack of the variant, with the drills' scaled delays (`options`: LocalStack's)."""
    settings = {"cache_seconds": 0, **options}  # drills look through the edge cache at the regions
    return LocalStack(
        tmp_path_factory.mktemp(f"{name}-{variant.id}"),
        topology=Topology(scale=SCALE),
        monitor_interval=MONITOR_INTERVAL,
        edge_port=0,
        **variant.stack_options(),
        **settings,
    ).start()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, variant) -> Iterator[LocalStack]:
    local = start_stack(tmp_path_factory, "stack", variant)
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


def edge_status(stack) -> dict[str, dict]:
    response = Client(stack, stack.topology.primary).get("/_edge/status")
    assert response.status_code == 200
    return {region["region"]: region for region in response.json()["regions"]}


def detection_bounds(stack) -> tuple[float, float]:
    """(earliest, latest) seconds from a region's death until its router takes it out.

    Cloudflare: the first failed probe, one monitor interval (+ its timeout) at most.
    Route 53: `failure_threshold` failed health checks in a row."""
    if stack.router == "route53":
        threshold = stack.edge.failure_threshold
        return (threshold - 1) * MONITOR_INTERVAL, (threshold + 1) * MONITOR_INTERVAL + 0.5
    return 0.0, 2 * MONITOR_INTERVAL + 0.1


def wait_until_out(stack, region: str, since: float) -> float:
    """Until the router has taken the region out and no client's answer points there any
    more; the seconds from `since` (time.monotonic()) until the router took it out."""
    wait_until(lambda: not edge_status(stack)[region]["healthy"], 10, f"{region} taken out")
    detected = time.monotonic() - since
    time.sleep(stack.edge.answers_kept_s)  # resolvers and routers let go of older answers
    return detected


def wait_until_back(stack, region: str, timeout: float = 5) -> None:
    """Until the region is in rotation and its own clients are served by it again."""
    wait_until(lambda: edge_status(stack)[region]["healthy"], timeout, f"{region} to return")
    wait_until(
        lambda: Client(stack, region).get("/docs").headers[SERVED_BY_HEADER] == region,
        stack.edge.answers_kept_s + 5,
        f"{region}'s clients to come back",
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
