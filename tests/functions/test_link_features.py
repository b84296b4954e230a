"""Templated links and `/<slug>+` details through the real redirect handler
(API Gateway v2.0 events, a real Redis replica, the index in moto S3)."""

from __future__ import annotations

import html
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.redirect import handler

from .conftest import http_event, last_log
from .test_redirect import assert_goes_to_a_target


def get(path, **kwargs) -> dict:
    return handler(http_event(path, **kwargs), None)


def reads(server) -> dict[str, int]:
    stats = server.client().info("commandstats")
    return {cmd: stats.get(f"cmdstat_{cmd}", {}).get("calls", 0) for cmd in ("get", "mget")}


def reads_for(server, path, **kwargs) -> tuple[dict, dict[str, int]]:
    before = reads(server)
    response = get(path, **kwargs)
    after = reads(server)
    return response, {cmd: after[cmd] - before[cmd] for cmd in after}


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/jira/ABC-1", "https://jira.example.com/browse/ABC-1"),
        ("/JIRA/ABC-1", "https://jira.example.com/browse/ABC-1"),
        ("/jira/ABC-1/comments/", "https://jira.example.com/browse/ABC-1/comments/"),
        ("/jira", "https://jira.example.com/browse/"),
        ("/jira/", "https://jira.example.com/browse/"),
        ("/jira/a b/ü", "https://jira.example.com/browse/a%20b/%C3%BC"),
        ("/jira/cloud/XYZ-9", "https://cloud.example.com/issues?key=XYZ-9"),  # the longest
        ("/jira/cloud", "https://cloud.example.com/issues?key="),
        ("/jira/Cloud/XYZ-9", "https://cloud.example.com/issues?key=XYZ-9"),
        ("/jira/%41", "https://jira.example.com/browse/%2541"),  # rawPath is decoded already
    ],
)
def test_templated_links_fill_in_the_rest_of_the_path(serving, path, location):
    response = get(path)
    assert response["headers"]["Location"] == location
    assert response["statusCode"] == (307 if "cloud" in location else 302)


def test_a_templated_link_forwards_the_query_when_asked(serving):
    response = get("/jira/cloud/XYZ-9", query="tab=history")
    assert response["headers"]["Location"] == (
        "https://cloud.example.com/issues?key=XYZ-9&tab=history"
    )


@pytest.mark.parametrize("path", ["/docs/x", "/rfc/template/x", "/gh/a/b", "/nope/x"])
def test_links_without_a_template_are_not_prefixes(serving, path):
    response = get(path)
    assert response["statusCode"] == 404 and "Location" not in response["headers"]


def test_an_exact_hit_is_one_get_and_a_templated_hit_at_most_two_reads(serving, capsys):
    _, replica, _, _ = serving
    get("/docs")  # connected
    assert reads_for(replica, "/docs")[1] == {"get": 1, "mget": 0}
    assert reads_for(replica, "/jira")[1] == {"get": 1, "mget": 0}
    response, counts = reads_for(replica, "/jira/cloud/XYZ-9/x/y")
    assert counts == {"get": 1, "mget": 1}
    assert response["headers"]["Location"] == "https://cloud.example.com/issues?key=XYZ-9/x/y"
    log = last_log(capsys)
    assert (log["slug"], log["source"]) == ("jira/cloud", "redis")
    # A path that cannot be a slug as a whole (a space) skips the exact GET.
    assert reads_for(replica, "/jira/a b")[1] == {"get": 0, "mget": 1}
    assert reads_for(replica, "/_links/x")[1] == {"get": 0, "mget": 0}


def test_templates_are_answered_from_s3_while_redis_is_down(serving, capsys):
    _, replica, _, _ = serving
    replica.kill()
    assert get("/jira/ABC-1")["headers"]["Location"] == "https://jira.example.com/browse/ABC-1"
    assert last_log(capsys)["source"] == "s3-fallback"
    cloud = get("/jira/cloud/X")["headers"]["Location"]
    assert cloud == "https://cloud.example.com/issues?key=X"
    assert get("/docs/x")["statusCode"] == 404


HOSTILE_REST = st.one_of(
    st.text(max_size=200),
    st.sampled_from(
        [
            "\r\nSet-Cookie: a=b",
            "..",
            "../../../etc",
            "/evil.example",
            "//evil.example",
            "\\evil.example",
            "@evil.example",
            "x" * 10_000,
            "☃/ｅｖｉｌ/\u202e",
        ]
    ),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    slug=st.sampled_from(["jira", "JIRA", "jira/cloud", "docs"]),
    rest=HOSTILE_REST,
    query=st.text(max_size=50),
)
def test_hostile_templated_paths_never_change_the_targets_origin(serving, slug, rest, query):
    response = get(f"/{slug}/{rest}", query=query)
    assert response["statusCode"] in (200, 302, 307, 404)  # 200: details, for a final "+"
    for value in response["headers"].values():
        assert "\r" not in value and "\n" not in value
    if location := response["headers"].get("Location"):
        assert_goes_to_a_target(location)
        origin = {"docs": "docs.example.com", "jira/cloud": "cloud.example.com"}
        assert urlsplit(location).netloc in (origin.get(slug.lower(), "jira.example.com"),)


def test_details_show_the_link_without_following_it(serving, capsys):
    _, _, _, index = serving
    response = get("/jira+")
    assert response["statusCode"] == 200 and "Location" not in response["headers"]
    assert response["headers"]["Content-Type"] == "text/html; charset=utf-8"
    page = response["body"]
    for shown in (
        "https://jira.example.com/browse/{path}",
        "platform@example.com",
        "Jira issues by key: go/jira/ABC-1",
        index.version,
    ):
        assert html.escape(shown) in page
    assert "<dt>Expires<dd>never" in page
    assert last_log(capsys)["source"] == "s3-index"
    templated = get("/jira/ABC-1+")["body"]
    assert "This request goes to" in templated and "browse/ABC-1" in templated
    plain = get("/Docs+")
    assert "https://docs.example.com/" in plain["body"] and "Template" not in plain["body"]
    assert "s-maxage=0" in plain["headers"]["Cache-Control"]  # only "/docs+" is invalidated
    assert "s-maxage" not in response["headers"]["Cache-Control"]
    expired = get("/old+")
    assert expired["statusCode"] == 200 and "expired: answers 410 Gone" in expired["body"]
    assert get("/jira+", method="HEAD")["body"] == ""


@pytest.mark.parametrize("path", ["/nope+", "/+", "/docs/x+", "/_links+", "/a<b>+"])
def test_details_of_no_link_are_a_404(serving, path):
    response = get(path)
    assert response["statusCode"] == 404 and "Location" not in response["headers"]
    assert "<b>" not in response["body"]


def test_details_without_the_s3_index_are_a_503(serving, configure):
    _, replica, _, _ = serving
    configure(REDIS_URL=replica.url, LINK_INDEX_BUCKET="no-such-bucket-anywhere")
    response = get("/jira+")
    assert response["statusCode"] == 503 and response["headers"]["Retry-After"] == "5"
    assert get("/jira/x")["statusCode"] == 302  # redirects do not need S3
