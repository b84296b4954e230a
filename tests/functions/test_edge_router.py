"""functions.edge_router.handler on CloudFront's origin-request event: where each request goes."""

from __future__ import annotations

import copy
import json

import pytest

from functions import edge_router
from functions.edge_router import handler

from .conftest import EVENTS

ORIGIN_REQUEST = json.loads((EVENTS / "cloudfront-origin-request.json").read_text())
ROUTING = "origin.go.example.com"


@pytest.fixture(autouse=True)
def _fresh_answers():
    edge_router._answers.clear()
    yield
    edge_router._answers.clear()


def resolver(answers: dict[str, str | None]):
    """Route 53 as seen from the function: the canonical name a lookup ends at."""
    asked: list[str] = []

    def resolve(name: str):
        asked.append(name)
        canonical = answers.get(name)
        if canonical is None:
            raise socket_error()
        return canonical, [name], ["192.0.2.10"]

    resolve.asked = asked
    return resolve


def socket_error():
    return OSError("[Errno -2] Name or service not known")


def origin_request(**custom_headers: str) -> dict:
    event = copy.deepcopy(ORIGIN_REQUEST)
    headers = event["Records"][0]["cf"]["request"]["origin"]["custom"]["customHeaders"]
    for keyword, value in custom_headers.items():
        name = keyword.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = [{"key": name, "value": value}]
    return event


def routed(event, answers) -> dict:
    return handler(event, None, resolve=resolver(answers))


def test_the_latency_answer_picks_the_origin_and_the_host():
    request = routed(origin_request(), {ROUTING: "us-west-2.origin.go.example.com."})
    assert request["origin"]["custom"]["domainName"] == "us-west-2.origin.go.example.com"
    assert request["headers"]["host"] == [
        {"key": "Host", "value": "us-west-2.origin.go.example.com"}
    ]
    # The secret stays on the origin (CloudFront sends it); the routing headers do not leave.
    assert request["origin"]["custom"]["customHeaders"] == {
        "x-origin-verify": [{"key": "x-origin-verify", "value": "from-cloudfront"}]
    }
    assert request["uri"] == "/docs" and request["method"] == "GET"


def test_the_failover_origin_goes_to_the_first_other_region():
    event = origin_request(x_golinks_route="failover")
    event["Records"][0]["cf"]["request"]["origin"]["custom"]["domainName"] = (
        "eu-west-1.origin.go.example.com"
    )
    request = routed(event, {ROUTING: "eu-west-1.origin.go.example.com"})
    assert request["origin"]["custom"]["domainName"] == "us-west-2.origin.go.example.com"
    assert "x-golinks-route" not in request["origin"]["custom"]["customHeaders"]


def test_failover_from_a_secondary_answer_goes_to_the_first_region():
    event = origin_request(x_golinks_route="failover")
    request = routed(event, {ROUTING: "ap-southeast-1.origin.go.example.com"})
    assert request["origin"]["custom"]["domainName"] == "eu-west-1.origin.go.example.com"


def test_no_dns_answer_sends_the_request_to_the_first_region():
    request = routed(origin_request(), {})
    assert request["origin"]["custom"]["domainName"] == "eu-west-1.origin.go.example.com"


def test_an_answer_outside_the_regions_is_not_trusted():
    request = routed(origin_request(), {ROUTING: "sa-east-1.origin.go.example.com"})
    assert request["origin"]["custom"]["domainName"] == "eu-west-1.origin.go.example.com"
    request = routed(origin_request(), {ROUTING: "us-west-2.elsewhere.example.net"})
    assert request["origin"]["custom"]["domainName"] == "eu-west-1.origin.go.example.com"


def test_a_container_asks_dns_once_per_answer_lifetime(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(edge_router.time, "monotonic", lambda: clock[0])
    resolve = resolver({ROUTING: "us-west-2.origin.go.example.com"})
    for _ in range(3):
        handler(origin_request(), None, resolve=resolve)
    assert resolve.asked == [ROUTING]
    clock[0] += edge_router.ANSWER_SECONDS + 0.1
    handler(origin_request(), None, resolve=resolve)
    assert resolve.asked == [ROUTING, ROUTING]


@pytest.mark.parametrize("missing", ["x-origin-verify", "x-golinks-regions"])
def test_a_distribution_without_the_routing_headers_gets_a_clear_502(missing, capsys):
    response = routed(origin_request(**{missing.replace("-", "_"): None}), {})
    assert response["status"] == "502"
    assert missing in response["body"]
    assert response["headers"]["cache-control"] == [{"key": "Cache-Control", "value": "no-store"}]
    assert json.loads(capsys.readouterr().out)["missing"] == missing


def test_an_s3_origin_passes_unchanged():
    event = origin_request()
    request = event["Records"][0]["cf"]["request"]
    request["origin"] = {"s3": {"domainName": "site.s3.us-east-1.amazonaws.com", "path": ""}}
    before = copy.deepcopy(request)
    assert routed(event, {}) == before


def test_the_names_are_the_program_s():
    assert edge_router.routing_name("go.example.com") == ROUTING
    assert edge_router.regional_origin("eu-west-1", ROUTING) == "eu-west-1.origin.go.example.com"
