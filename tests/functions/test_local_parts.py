"""The local stack's own parts: the delaying link and the local API Gateway."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import threading
import time
from urllib.parse import quote

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from local.delay_proxy import DelayProxy
from local.edge import CACHE_HEADER, CLOUDFRONT_API_PREFIX, Edge, distribution_id
from local.lambda_host import http_api_raw_path
from local.servers import ServerError, wait_until
from local.stack import FunctionHost, PublishFailed, invoke
from local.topology import Topology


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield lambda coroutine: asyncio.run_coroutine_threadsafe(coroutine, loop).result()
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def test_replication_through_a_delayed_link_arrives_after_the_delay(redis_factory, loop):
    primary = redis_factory("primary")
    proxy = loop(DelayProxy(primary.port, 0.04).start())
    replica = redis_factory("replica", replica_of=primary, replication_port=proxy.port)
    writer, reader = primary.client(), replica.client()
    delays = []
    for i in range(10):
        started = time.perf_counter()
        writer.set("k", i)
        wait_until(lambda i=i: reader.get("k") == str(i).encode(), 2, "replication", 0.0005)
        delays.append(time.perf_counter() - started)
    assert min(delays) >= 0.04
    assert sorted(delays)[5] < 0.04 + 0.03

    loop(proxy.cut())
    wait_until(lambda: reader.info("replication")["master_link_status"] == "down", 5, "cut")
    writer.set("k", "while-cut")
    time.sleep(0.1)
    assert reader.get("k") != b"while-cut"
    loop(proxy.restore())
    wait_until(lambda: reader.get("k") == b"while-cut", 10, "the link to come back")
    loop(proxy.stop())


@pytest.fixture
def echo_host(tmp_path):
    host = FunctionHost(
        tmp_path,
        "echo",
        {"AWS_REGION": "us-west-2"},
        routes=[
            "GET /healthz=tests.support.echo_function.handler",
            "$default=tests.support.echo_function.handler",
        ],
        invokes=["echo=tests.support.echo_function.handler"],
    ).start()
    yield host
    host.stop()


def test_a_function_host_keeps_its_port_refuses_when_dead_and_reports_a_failed_start(
    echo_host, tmp_path
):
    """The host serves on a socket bound before it starts (no other process can take the
    port in between); dead, its port refuses; restarted, it serves on the same port."""
    port = echo_host.port
    assert requests.get(f"{echo_host.url}/healthz", timeout=5).status_code == 200
    echo_host.kill()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{echo_host.url}/healthz", timeout=5)
    echo_host.start()
    assert echo_host.port == port
    assert requests.get(f"{echo_host.url}/healthz", timeout=5).status_code == 200
    broken = FunctionHost(tmp_path / "broken", "broken", {}, routes=["$default=no.such.handler"])
    with pytest.raises(ServerError, match="broken exited") as failed:
        broken.start()
    assert "No module named 'no'" in str(failed.value)  # the log's last lines
    assert not broken.running


def test_http_requests_become_api_gateway_v2_events(echo_host):
    connection = http.client.HTTPConnection("127.0.0.1", echo_host.port, timeout=5)
    connection.putrequest("POST", "/Some%20Path/x?b=2&a=1&a=3&empty=")
    for name, value in [
        ("X-Multi", "one"),
        ("x-multi", "two"),
        ("Cookie", "c1=v1; c2=v2"),
        ("Content-Length", "8"),
    ]:
        connection.putheader(name, value)
    connection.endheaders(b"\xff\x00binary")
    response = connection.getresponse()
    assert response.status == 200
    event = json.loads(response.read())
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert event["rawPath"] == "/Some Path/x"  # HTTP APIs deliver the path decoded
    assert event["rawQueryString"] == "b=2&a=1&a=3&empty="
    assert event["queryStringParameters"] == {"b": "2", "a": "1,3", "empty": ""}
    assert event["headers"]["x-multi"] == "one,two"
    assert all(name == name.lower() for name in event["headers"])
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\x00binary"
    http_context = event["requestContext"]["http"]
    assert (http_context["method"], http_context["path"]) == ("POST", "/Some Path/x")
    assert response.headers.get_all("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert int(response.headers["X-Remaining"]) > 0
    connection.close()


def test_routes_handler_errors_and_the_invoke_api(echo_host):
    health = requests.get(f"{echo_host.url}/healthz", timeout=5).json()
    assert health["routeKey"] == "GET /healthz"
    boom = requests.get(f"{echo_host.url}/boom", timeout=5)
    assert boom.status_code == 500 and boom.json() == {"message": "Internal Server Error"}
    assert "Traceback" not in boom.text
    assert invoke(echo_host.url, "echo", {"ping": 1}) == {
        "received": {"ping": 1},
        "function": "echo",
    }
    with pytest.raises(PublishFailed, match="the echo function failed: boom"):
        invoke(echo_host.url, "echo", {"boom": True})
    with pytest.raises(PublishFailed, match="unreachable"):
        invoke("http://127.0.0.1:1", "echo", {})


@pytest.mark.parametrize(
    ("target", "raw_path"),
    [
        ("/docs", "/docs"),
        ("/docs?x=1", "/docs"),
        ("/%64ocs", "/docs"),
        ("/%2564ocs", "/%64ocs"),  # decoded once, not twice
        ("/rfc%2Ftemplate", "/rfc/template"),
        ("/docs%3Fx=1?y=2", "/docs"),  # cut at the decoded '?'
        ("/a%20b/./c/../d", "/a b/./c/../d"),  # no dot-segment removal
        ("/caf%C3%A9", "/café"),
    ],
)
def test_http_api_paths_are_decoded_once_and_cut_at_a_decoded_question_mark(target, raw_path):
    assert http_api_raw_path(target) == raw_path


@given(st.text(st.characters(codec="utf-8", exclude_characters="?"), max_size=30))
def test_decoding_undoes_exactly_one_encoding(text):
    path = "/" + text
    once = quote(path, safe="/")
    assert http_api_raw_path(once) == path
    assert http_api_raw_path(quote(once, safe="/")) == once


def _send(port: int, target: str) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.putrequest("GET", target, skip_accept_encoding=True)
    connection.endheaders()
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    return body


def test_the_local_api_gateway_routes_and_delivers_the_path_as_http_apis_do(echo_host):
    cut = _send(echo_host.port, "/docs%3Fx=1?y=2")
    assert (cut["rawPath"], cut["rawQueryString"]) == ("/docs", "y=2")
    assert cut["requestContext"]["http"]["path"] == "/docs"
    assert _send(echo_host.port, "/%68ealthz")["routeKey"] == "GET /healthz"
    twice = _send(echo_host.port, "/%2568ealthz")
    assert (twice["routeKey"], twice["rawPath"]) == ("$default", "/%68ealthz")


class NoStaticSite:
    def get(self, region, key):
        return None


@pytest.fixture
def edge(echo_host, loop):
    """The local edge in front of one region whose function echoes its events."""
    edge = loop(
        Edge(
            Topology(regions=("eu-west-1",), scale=0.01),
            {"eu-west-1": echo_host.url},
            origin_verify="secret",
            static_site=NoStaticSite(),
            interval=5,
            port=0,
        ).start()
    )
    yield edge
    loop(edge.stop())


@pytest.mark.parametrize(
    "target",
    ["/a/./b/../c", "/./docs", "/static/../docs", "/%2564ocs", "/docs%3Fx=1?y=2", "/a%2F..%2Fb"],
)
def test_the_edge_forwards_the_path_as_sent_like_cloudfront(edge, target):
    # CloudFront normalises the path only to pick a cache behaviour; the origin gets it as sent.
    event = _send(edge.port, target)
    assert event["rawPath"] == http_api_raw_path(target)
    assert event["headers"]["x-origin-verify"] == "secret"


def test_invalidating_through_the_cloudfront_api_drops_matching_cached_answers(edge):
    import boto3  # noqa: PLC0415

    def get(path: str) -> requests.Response:
        url = f"http://127.0.0.1:{edge.port}{path}"
        return requests.get(url, allow_redirects=False, timeout=5)

    first = {
        path: get(path).headers["Location"] for path in ("/cached/a", "/cached/a?q=1", "/cached/b")
    }
    again = get("/cached/a")
    assert again.headers[CACHE_HEADER] == "hit" and again.headers["Location"] == first["/cached/a"]
    cloudfront = boto3.client(
        "cloudfront",
        endpoint_url=f"http://127.0.0.1:{edge.port}{CLOUDFRONT_API_PREFIX}",
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    created = cloudfront.create_invalidation(
        DistributionId=distribution_id("eu-west-1"),
        InvalidationBatch={
            "Paths": {"Quantity": 1, "Items": ["/cached/a*"]},
            "CallerReference": "test",
        },
    )["Invalidation"]
    assert created["Status"] == "Completed"
    read = cloudfront.get_invalidation(
        DistributionId=distribution_id("eu-west-1"), Id=created["Id"]
    )
    assert read["Invalidation"]["InvalidationBatch"]["Paths"]["Items"] == ["/cached/a*"]
    for path in ("/cached/a", "/cached/a?q=1"):
        fresh = get(path)
        assert fresh.headers[CACHE_HEADER] == "miss" and fresh.headers["Location"] != first[path]
    untouched = get("/cached/b")
    assert untouched.headers[CACHE_HEADER] == "hit"
    with pytest.raises(cloudfront.exceptions.ClientError, match="NoSuchInvalidation"):
        cloudfront.get_invalidation(DistributionId="E123", Id=created["Id"])
    api = f"http://127.0.0.1:{edge.port}{CLOUDFRONT_API_PREFIX}/2020-05-31/distribution"
    for body in (b"<InvalidationBatch><Paths>", b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>", b""):
        bad = requests.post(
            f"{api}/{distribution_id('eu-west-1')}/invalidation", data=body, timeout=5
        )
        assert bad.status_code == 400 and b"MalformedXML" in bad.content


def test_an_answer_fetched_across_an_invalidation_is_not_cached(edge):
    url = f"http://127.0.0.1:{edge.port}/cached/slow"
    answers = []

    def fetch() -> None:
        answers.append(requests.get(url, allow_redirects=False, timeout=5))

    slow = threading.Thread(target=fetch)
    slow.start()
    time.sleep(0.1)  # the fetch is under way at the origin (it takes 0.3 s)
    edge.invalidate(distribution_id("eu-west-1"), ["/cached/*"])
    slow.join()
    assert answers[0].status_code == 302 and answers[0].headers[CACHE_HEADER] == "miss"
    after = requests.get(url, allow_redirects=False, timeout=5)
    assert after.headers[CACHE_HEADER] == "miss"
    assert requests.get(url, allow_redirects=False, timeout=5).headers[CACHE_HEADER] == "hit"
