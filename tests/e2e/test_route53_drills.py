"""The region drills with trafficRouter route53: Route 53 health checks and latency answers,
the real Lambda@Edge router, one CloudFront. A region dies: clients move; it returns: they
come back. (Run in their own module: the stack starts once, beside the Cloudflare one.)"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from local.route53_edge import ROUTE53_THRESHOLD, Route53Edge
from local.servers import wait_until
from local.stack import LocalStack

from .conftest import MONITOR_INTERVAL, Client, assert_every_link_resolves, start_stack
from .test_drills import edge_status


@pytest.fixture(scope="module")
def route53_stack(tmp_path_factory) -> Iterator[LocalStack]:
    local = start_stack(tmp_path_factory, "route53", router="route53")
    yield local
    local.stop()


def test_every_client_is_served_by_its_nearest_region_through_the_router(route53_stack):
    assert isinstance(route53_stack.edge, Route53Edge)
    served = assert_every_link_resolves(route53_stack)
    assert served == {region: {region} for region in route53_stack.topology.regions}
    status = Client(route53_stack, "eu-west-1").get("/_edge/status").json()
    assert status["router"] == "route53" and status["failure_threshold"] == ROUTE53_THRESHOLD


def test_a_region_dies_clients_move_and_come_back(route53_stack):
    stack = route53_stack
    edge = stack.edge
    stack.kill_region("us-west-2")
    killed = time.monotonic()
    # Refused at once: CloudFront's failover origin sends it on before Route 53 notices.
    moved = Client(stack, "us-west-2").get("/docs")
    assert moved.status_code == 302 and moved.headers["X-Served-By-Region"] == "eu-west-1"
    wait_until(lambda: not edge_status(stack)["us-west-2"]["healthy"], 10, "Route 53 to notice")
    detected = time.monotonic() - killed
    # Not before `threshold` failed checks, and not much after.
    assert detected >= (ROUTE53_THRESHOLD - 1) * MONITOR_INTERVAL
    assert detected <= (ROUTE53_THRESHOLD + 1) * MONITOR_INTERVAL + 0.5
    time.sleep(edge.record_ttl)  # resolvers let go of the old answer
    served = assert_every_link_resolves(stack)
    assert served["us-west-2"] == {"eu-west-1"}  # the next-nearest region (118 ms < 160 ms)
    assert served["ap-southeast-1"] == {"ap-southeast-1"}

    stack.restart_region("us-west-2")
    wait_until(lambda: edge_status(stack)["us-west-2"]["healthy"], 15, "the region to return")
    wait_until(
        lambda: (
            Client(stack, "us-west-2").get("/docs").headers["X-Served-By-Region"] == "us-west-2"
        ),
        edge.record_ttl + 5,
        "clients to come back",
    )
    assert assert_every_link_resolves(stack)["us-west-2"] == {"us-west-2"}
