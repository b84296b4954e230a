"""The local edge against raw sockets: every malformed request is a 4xx in our words.

Each bad request gets a 4xx whose body names the problem without quoting the
request, and exactly one line on the terminal, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import re
import socket
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.edge import Edge
from local.stack import FunctionHost
from local.topology import Topology

MARKER = b"<x-marker>"
BAD_REQUESTS = {
    "absolute-form target": b"GET http://evil.com/docs" + MARKER + b" HTTP/1.1\r\nHost: a\r\n\r\n",
    "authority-form target": b"CONNECT evil.com:443 HTTP/1.1\r\nHost: evil.com\r\n\r\n",
    "asterisk target": b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    "broken gzip body": b"POST /docs HTTP/1.1\r\nHost: a\r\nContent-Encoding: gzip\r\n"
    b"Content-Length: 10\r\n\r\n" + MARKER,
    "unknown encoding": b"POST /docs HTTP/1.1\r\nHost: a\r\nContent-Encoding: br\r\n"
    b"Content-Length: 10\r\n\r\n" + MARKER,
    "bad method": b"G" + MARKER + b"T /docs HTTP/1.1\r\nHost: a\r\n\r\n",
    "TLS on the HTTP port": b"\x16\x03\x01\x02\x00" + MARKER + b"\r\n\r\n",
    "bad header name": b"GET /docs HTTP/1.1\r\nHost: a\r\nX-" + MARKER + b": y\r\n\r\n",
    "bad version": b"GET /docs HTTP/9." + MARKER + b"\r\nHost: a\r\n\r\n",
    "bad chunk size": b"POST /docs HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    + MARKER
    + b"\r\nabc\r\n0\r\n\r\n",
    "bad content length": b"POST /docs HTTP/1.1\r\nHost: a\r\nContent-Length: "
    + MARKER
    + b"\r\n\r\n",
    "NUL in the path": b"GET /do\x00cs" + MARKER + b" HTTP/1.1\r\nHost: a\r\n\r\n",
    "raw UTF-8 in the path": b"GET /d\xc3\xa9\xff" + MARKER + b" HTTP/1.1\r\nHost: a\r\n\r\n",
    "header too long": b"GET /docs HTTP/1.1\r\nHost: a\r\nX-A: " + MARKER * 2000 + b"\r\n\r\n",
    "unknown client region": b"GET /docs HTTP/1.1\r\nHost: a\r\nX-Client-Region: "
    + MARKER
    + b"\r\n\r\n",
}


class StaticSite:
    def get(self, region, key):
        return (b"<!doctype html>home", "text/html") if key == "index.html" else None


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    host = FunctionHost(
        tmp_path_factory.mktemp("echo"),
        "echo",
        {"AWS_REGION": "eu-west-1"},
        routes=["$default=tests.support.echo_function.handler"],
    ).start()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def run(coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

    lines: list[str] = []
    edge = Edge(
        Topology(regions=("eu-west-1",), scale=0.01),
        {"eu-west-1": host.url},
        origin_verify="verify",
        static_site=StaticSite(),
        port=0,
        report=lines.append,
    )
    run(edge.start())
    edge.lines = lines
    yield edge
    run(edge.stop())
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    host.stop()


def exchange(port: int, data: bytes, wait: float = 5) -> bytes:
    """Send raw bytes; the first answer (status line, headers, Content-Length of body).

    Empty when the edge closes without answering or waits for more bytes."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(data)
        with contextlib.suppress(TimeoutError, ConnectionError):
            while chunk := sock.recv(65536):
                answer += chunk
                head, sep, body = answer.partition(b"\r\n\r\n")
                length = re.search(rb"(?im)^content-length: *(\d+)", head)
                if sep and length and len(body) >= int(length.group(1)):
                    break
    return answer


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize("name", BAD_REQUESTS)
def test_a_malformed_request_gets_a_4xx_in_our_words_and_one_line(edge, name):
    before = len(edge.lines)
    answer = exchange(edge.port, BAD_REQUESTS[name])
    assert 400 <= status_of(answer) < 500, (name, answer[:200])
    assert MARKER not in answer and b"x-marker" not in answer  # nothing of the request echoed
    assert b"Traceback" not in answer
    lines = edge.lines[before:]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"edge: {status_of(answer)} for a bad request from 127.0.0.1: ")
    assert "\n" not in lines[0] and "x-marker" not in lines[0]


def test_well_formed_requests_still_pass_and_are_not_reported(edge):
    before = len(edge.lines)
    answer = exchange(edge.port, b"GET /docs?q=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert status_of(answer) == 200 and b'"rawPath": "/docs"' in answer
    body = gzip.compress(b"hello")
    answer = exchange(
        edge.port,
        b"POST /docs HTTP/1.1\r\nHost: a\r\nContent-Encoding: gzip\r\nConnection: close\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body,
    )
    assert status_of(answer) == 200 and b'"body": "hello"' in answer
    assert edge.lines[before:] == []


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from([b"GET", b"POST", b"G\x00T", b"", b"\xff"]),
    target=st.binary(max_size=40),
    rest=st.binary(max_size=60),
)
def test_any_garbage_is_a_4xx_or_an_answer_never_a_500(edge, method, target, rest):
    before = len(edge.lines)
    request = method + b" " + target + MARKER + b" HTTP/1.1\r\n" + rest
    answer = exchange(edge.port, request, wait=0.5)
    if not answer:  # the client sent too little to answer (no end of headers): closed
        return
    status = status_of(answer)
    assert status < 500, answer[:300]
    if status >= 400:
        assert MARKER not in answer
        assert len(edge.lines[before:]) == 1
