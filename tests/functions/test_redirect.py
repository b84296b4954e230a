"""functions.redirect.handler with real API Gateway v2.0 events, a real Redis replica, moto S3."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions import region
from functions.redirect import handler

from .conftest import LINKS, http_event, last_log

TARGETS = {link.url for link in LINKS}
REPO = Path(__file__).resolve().parents[2]


def get(path="/docs", **kwargs) -> dict:
    return handler(http_event(path, **kwargs), None)


def test_a_link_redirects_with_its_status_and_a_cacheable_answer(serving, capsys):
    response = get("/docs")
    assert response["statusCode"] == 302
    assert response["headers"]["Location"] == "https://docs.example.com/"
    assert response["headers"]["Cache-Control"] == "public, max-age=300"
    log = last_log(capsys)
    assert (log["slug"], log["status"], log["source"], log["Outcome"]) == (
        "docs",
        302,
        "redis",
        "redirect",
    )
    assert log["Region"] == "us-west-2" and log["Latency"] >= 0
    assert log["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] == "Requests"
    assert get("/gh")["statusCode"] == 301
    assert get("/rfc/template")["headers"]["Location"] == "https://docs.example.com/rfcs/template"


def test_cache_lifetimes_come_from_configuration_and_never_outlive_the_link(serving, configure):
    _, replica, _bucket, _ = serving
    configure(REDIS_URL=replica.url, REDIRECT_CACHE_SECONDS="3600", NOT_FOUND_CACHE_SECONDS="7")
    soon = get("/soon")
    assert soon["statusCode"] == 308
    assert 0 < int(soon["headers"]["Cache-Control"].split("=")[1]) <= 600  # its expiry
    assert get("/docs")["headers"]["Cache-Control"] == "public, max-age=3600"
    assert get("/nope")["headers"]["Cache-Control"] == "public, max-age=7"
    configure(REDIS_URL=replica.url, REDIRECT_CACHE_SECONDS="0")
    assert get("/docs")["headers"]["Cache-Control"] == "no-cache"


def test_head_answers_like_get_without_a_body(serving):
    assert get("/docs", method="HEAD")["headers"]["Location"] == "https://docs.example.com/"
    missing = get("/nope", method="HEAD")
    assert missing["statusCode"] == 404 and missing["body"] == ""


def test_unknown_and_expired_links(serving, capsys):
    missing = get("/nope")
    assert missing["statusCode"] == 404 and "Location" not in missing["headers"]
    assert (
        "No link <code>go/nope</code>" in missing["body"]
        and "max-age=60" in missing["headers"]["Cache-Control"]
    )
    assert last_log(capsys)["source"] == "miss"
    gone = get("/old")
    assert gone["statusCode"] == 410 and "expired" in gone["body"]
    assert "Location" not in gone["headers"]


@pytest.mark.parametrize(
    ("path", "query", "location"),
    [
        (
            "/search",
            "q=redis+ttl&page=2",
            "https://docs.example.com/search?lang=en&q=redis+ttl&page=2#results",
        ),
        ("/plain", "a=1", "https://example.com/p?a=1"),
        ("/plain", "", "https://example.com/p"),
        ("/plain", "x=%0d%0aSet-Cookie:%20a", "https://example.com/p?x=%0d%0aSet-Cookie:%20a"),
        ("/plain", "x=\r\nSet-Cookie: a", "https://example.com/p?x=%0D%0ASet-Cookie:%20a"),
        ("/plain", "u=ü", "https://example.com/p?u=%C3%BC"),
        ("/docs", "ignored=1", "https://docs.example.com/"),
    ],
)
def test_query_forwarding_only_when_the_link_asks_and_always_safe(serving, path, query, location):
    response = get(path, query=query)
    assert response["headers"]["Location"] == location


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "get", "TRACE"])
def test_other_methods_get_405(serving, method):
    response = get("/docs", method=method)
    assert response["statusCode"] == 405 and response["headers"]["Allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    "path",
    [
        "//evil.example.com",
        "/../etc/passwd",
        "/%2e%2e/docs",
        "/docs%0d%0aLocation:%20https://evil.example",
        "/docs\r\nSet-Cookie: a=b",
        "/dоcs",  # Cyrillic о
        "/ｄｏｃｓ",
        "/" + "a" * 10_000,
        "/healthz",
        "/_edge/status",
        "/docs/../gh",
        "/\x00",
        "",
    ],
)
def test_hostile_paths_never_redirect_anywhere_else(serving, path):
    response = get(path)
    assert response["statusCode"] == 404
    assert "Location" not in response["headers"]


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/DOCS", "https://docs.example.com/"),
        ("/docs/", "https://docs.example.com/"),
        ("/RFC/template", "https://docs.example.com/rfcs/template"),
    ],
)
def test_requests_are_normalised_like_the_index(serving, path, location):
    assert get(path)["headers"]["Location"] == location


@pytest.mark.parametrize("path", ["/DOCS", "/Docs/", "/No-Such-Link", "/OLD"])
def test_spellings_with_capitals_are_not_cached_by_the_cdn(serving, path):
    # A publish invalidates `/<slug>*`; CloudFront's invalidation paths are case-sensitive.
    assert get(path)["headers"]["Cache-Control"].endswith(", s-maxage=0")
    assert "s-maxage" not in get(path.lower())["headers"]["Cache-Control"]


@pytest.mark.parametrize(
    "raw_path",
    [
        "/%64ocs",  # '/%2564ocs' on the wire, decoded once by API Gateway
        "/rfc%2Ftemplate",  # '/rfc%252Ftemplate' on the wire
        "/%2564ocs",
        "/docs%3F",
    ],
)
def test_rawpath_is_not_decoded_again(serving, raw_path):
    response = get(raw_path)
    assert response["statusCode"] == 404 and "Location" not in response["headers"]


@pytest.mark.parametrize(
    "event",
    [
        None,
        [],
        "GET /docs",
        {},
        {"rawPath": "/docs"},
        {"rawPath": "/docs", "requestContext": None},
        {"rawPath": "/docs", "requestContext": {"http": None}},
        {"rawPath": "/docs", "requestContext": {"http": {"method": 7}}},
        {"rawPath": 42, "requestContext": {"http": {"method": "GET"}}},
    ],
)
def test_malformed_events_get_400(serving, event):
    assert handler(event, None)["statusCode"] == 400


def test_odd_but_survivable_events(serving):
    no_raw_path = http_event("/docs")
    no_raw_path.pop("rawPath")
    assert handler(no_raw_path, None)["statusCode"] == 302
    assert (
        handler(http_event("/docs", headers=None, rawQueryString=None), None)["statusCode"] == 302
    )
    weird_headers = http_event("/docs")
    weird_headers["headers"] = None
    assert handler(weird_headers, None)["statusCode"] == 302
    body = http_event("/docs", body=base64.b64encode(b"\xff" * 1000).decode(), isBase64Encoded=True)
    assert handler(body, None)["statusCode"] == 302


def test_origin_verify_rejects_requests_that_skipped_cloudfront(serving, configure):
    _primary, replica, _bucket, _ = serving
    configure(REDIS_URL=replica.url, ORIGIN_VERIFY="s3cr3t-from-cloudfront")
    gets_before = _get_calls(replica)
    assert get("/docs")["statusCode"] == 403
    assert get("/docs", headers={"x-origin-verify": "wrong"})["statusCode"] == 403
    assert get("/nope", method="POST")["statusCode"] == 403  # before anything else
    assert _get_calls(replica) == gets_before  # no lookup at all
    assert get("/docs", headers={"x-origin-verify": "s3cr3t-from-cloudfront"})["statusCode"] == 302
    assert get("/docs", headers={"X-Origin-Verify": "s3cr3t-from-cloudfront"})["statusCode"] == 302


def _get_calls(server) -> int:
    return server.client().info("commandstats").get("cmdstat_get", {}).get("calls", 0)


def test_redis_down_serves_from_s3_then_recovers_by_itself(serving, capsys):
    _, replica, _, _ = serving
    assert get("/docs")["statusCode"] == 302
    replica.kill()
    fallback = get("/gh")
    assert (
        fallback["statusCode"] == 301
        and fallback["headers"]["Location"] == "https://github.com/example"
    )
    assert last_log(capsys)["source"] == "s3-fallback"
    assert get("/old")["statusCode"] == 410
    assert get("/nope")["statusCode"] == 404
    assert region.redis()._down_until > time.monotonic()  # later requests skip Redis for now

    replica.start()
    replica.wait_in_sync()
    time.sleep(region.REDIS_RETRY_AFTER_S)
    assert get("/docs")["statusCode"] == 302
    assert last_log(capsys)["source"] == "redis"


def test_a_stalled_redis_falls_back_within_the_read_timeout(serving, capsys):
    _, replica, _, _ = serving
    get("/docs")  # connected
    replica.client().execute_command("CLIENT", "PAUSE", "2000")
    try:
        started = time.monotonic()
        assert get("/docs")["statusCode"] == 302
        assert time.monotonic() - started < 1.5  # the read timeout, then S3
        assert last_log(capsys)["source"] == "s3-fallback"
    finally:
        replica.client().execute_command("CLIENT", "UNPAUSE")


def test_with_neither_redis_nor_s3_the_answer_is_503_with_retry_after(serving, configure):
    _, replica, _, _ = serving
    configure(REDIS_URL=replica.url, LINK_INDEX_BUCKET="no-such-bucket-anywhere")
    replica.kill()
    response = get("/docs")
    assert response["statusCode"] == 503 and response["headers"]["Retry-After"] == "5"
    assert "Location" not in response["headers"]
    configure(REDIS_URL=replica.url)  # no bucket configured at all
    assert get("/docs")["statusCode"] == 503


def test_a_corrupt_value_in_redis_is_not_served(serving):
    primary, replica, _, _ = serving
    primary.client().set("link:docs", "not a link value")
    replica.wait_in_sync()
    response = get("/docs")
    assert (
        response["statusCode"] == 302
        and response["headers"]["Location"] == "https://docs.example.com/"
    )


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.text(max_size=300),
    query=st.text(max_size=100),
    method=st.sampled_from(["GET", "HEAD", "POST", "get", "", "\r\n"]),
    header=st.text(max_size=50),
)
def test_no_input_produces_a_500_or_a_foreign_location(serving, path, query, method, header):
    response = handler(
        http_event(path, method=method, query=query, headers={"x-origin-verify": header}), None
    )
    assert response["statusCode"] in (301, 302, 307, 308, 400, 404, 405, 410)
    for value in response["headers"].values():
        assert "\r" not in value and "\n" not in value
    location = response["headers"].get("Location")
    if location is not None:
        assert_goes_to_a_target(location)


def assert_goes_to_a_target(location: str) -> None:
    """A target's own URL (plus a forwarded query), or a template's origin and prefix."""
    assert location.isascii() and location.isprintable() and "\\" not in location
    prefixes = [t.split("{path}")[0].split("?")[0].split("#")[0] for t in TARGETS]
    assert any(location.split("?", maxsplit=1)[0].startswith(prefix) for prefix in prefixes), (
        location
    )
    assert urlsplit(location).netloc in {urlsplit(t).netloc for t in TARGETS}


def test_a_cold_redirect_imports_neither_boto3_nor_redis_py(serving):
    _, replica, _, _ = serving
    probe = (
        "import sys, json; from functions.redirect import handler; "
        f"event = json.loads({json.dumps(json.dumps(http_event('/docs')))}); "
        "status = handler(event, None)['statusCode']; "
        "print(json.dumps([status, sorted(m for m in ('boto3', 'botocore', 'redis', 'yaml') "
        "if m in sys.modules)]))"
    )
    env = {"PATH": os.environ["PATH"], "REDIS_URL": replica.url, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    assert json.loads(result.stdout.splitlines()[-1]) == [302, []]
