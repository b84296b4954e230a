"""The local stack's own parts: the delaying link and the local API Gateway."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import threading
import time

import pytest
import requests

from local.delay_proxy import DelayProxy
from local.servers import wait_until
from local.stack import FunctionHost, PublishFailed, invoke


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
