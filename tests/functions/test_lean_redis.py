"""The hot path's Redis client against real redis-server: AUTH, TLS, failures, timeouts."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from functions.lean_redis import LeanRedis, RedisReplyError, RedisUnavailable
from local.servers import make_test_ca


def test_get_hgetall_info_and_binary_values(redis_primary):
    admin = redis_primary.client()
    admin.set("k", b"\x00\r\n" * 100_000)
    admin.hset("h", mapping={"a": "1", "b": "2"})
    client = LeanRedis(redis_primary.url)
    assert client.execute("GET", "k") == b"\x00\r\n" * 100_000
    assert client.execute("GET", "missing") is None
    assert client.execute("HGETALL", "h") == [b"a", b"1", b"b", b"2"]
    assert b"role:master" in client.execute("INFO", "replication")
    assert client.execute("PING") == b"PONG"


def test_error_replies_raise_and_keep_the_connection(redis_primary):
    client = LeanRedis(redis_primary.url)
    redis_primary.client().hset("h", "a", "1")
    with pytest.raises(RedisReplyError, match="WRONGTYPE"):
        client.execute("GET", "h")
    assert client.execute("PING") == b"PONG"


def test_auth_with_password_username_and_database(redis_factory):
    server = redis_factory("secured", password="s3cret")
    server.client().execute_command("ACL", "SETUSER", "reader", "on", ">readpw", "~*", "+@all")
    redis.Redis.from_url(server.url.replace("/0", "/3")).set("k", "in-db-3")
    assert LeanRedis(server.url.replace("/0", "/3")).execute("GET", "k") == b"in-db-3"
    assert (
        LeanRedis(f"redis://127.0.0.1:{server.port}/3", password="s3cret").execute("GET", "k")
        == b"in-db-3"
    )
    reader = LeanRedis(f"redis://reader:readpw@127.0.0.1:{server.port}/3")
    assert reader.execute("GET", "k") == b"in-db-3"
    with pytest.raises(RedisReplyError, match="WRONGPASS"):
        LeanRedis(f"redis://:wrong@127.0.0.1:{server.port}").execute("PING")
    with pytest.raises(RedisReplyError, match="NOAUTH"):
        LeanRedis(f"redis://127.0.0.1:{server.port}").execute("GET", "k")


def test_tls_verifies_the_server_certificate(redis_factory, tmp_path):
    tls = make_test_ca(tmp_path / "ca")
    server = redis_factory("tls", password="pw", tls=tls)
    server.client().set("k", "over-tls")
    client = LeanRedis(server.url, ca_file=str(tls.ca))
    assert client.tls and client.execute("GET", "k") == b"over-tls"
    other_ca = make_test_ca(tmp_path / "other")
    with pytest.raises(RedisUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        LeanRedis(server.url, ca_file=str(other_ca.ca)).execute("PING")
    with pytest.raises(RedisUnavailable):  # a plain-text client at a TLS port
        LeanRedis(server.url.replace("rediss://", "redis://"), read_timeout=0.5).execute("PING")


def test_a_dead_server_raises_and_the_client_reconnects_when_it_returns(redis_factory):
    server = redis_factory("flaky")
    client = LeanRedis(server.url)
    server.client().set("k", "v")
    assert client.execute("GET", "k") == b"v"
    server.kill()
    with pytest.raises(RedisUnavailable):
        client.execute("GET", "k")
    with pytest.raises(RedisUnavailable, match="cannot connect"):
        client.execute("GET", "k")
    server.start()
    server.client().set("k", "back")
    assert client.execute("GET", "k") == b"back"


def test_a_stalled_server_times_out_after_the_read_timeout(redis_primary):
    client = LeanRedis(redis_primary.url, read_timeout=0.1)
    assert client.execute("PING") == b"PONG"
    pauser = threading.Thread(
        target=redis_primary.client().execute_command, args=("CLIENT", "PAUSE", "1000")
    )
    pauser.start()
    pauser.join()
    started = time.monotonic()
    with pytest.raises(RedisUnavailable):
        client.execute("GET", "k")
    assert time.monotonic() - started < 0.5
    redis_primary.client().execute_command("CLIENT", "UNPAUSE")
    assert client.execute("PING") == b"PONG"


@pytest.mark.parametrize("url", ["http://x", "redis://", "rediss:///0", "localhost:6379"])
def test_bad_urls_are_refused(url):
    with pytest.raises(ValueError, match="REDIS_URL must look like"):
        LeanRedis(url)
