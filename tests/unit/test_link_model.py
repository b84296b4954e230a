"""Slug grammar, target rules, request normalisation and the stored value format."""

import pytest

from functions.links.model import (
    MAX_SLUG_LENGTH,
    MAX_TARGET_LENGTH,
    Link,
    decode_value,
    encode_value,
    request_slug,
    slug_problem,
    target_problem,
)

GOOD_SLUGS = ["docs", "a", "rfc/template", "v1.2", "team_x/on-call", "x" * MAX_SLUG_LENGTH, "0"]


@pytest.mark.parametrize("slug", GOOD_SLUGS)
def test_slug_grammar_accepts(slug):
    assert slug_problem(slug) is None


@pytest.mark.parametrize(
    ("slug", "reason"),
    [
        ("", "empty"),
        ("x" * (MAX_SLUG_LENGTH + 1), "limit is 128"),
        ("Docs", "must be lowercase; write 'docs'"),
        ("dоcs", "non-ASCII character 'о' (U+043E)"),
        ("/docs", "start or end with '/'"),
        ("docs/", "start or end with '/'"),
        ("a//b", "empty segment"),
        ("a/../b", "'..'"),
        ("a..b", "'..'"),
        ("./a", "'.' segment"),
        ("a/.", "'.' segment"),
        ("a b", "character ' '"),
        ("a?b", "character '?'"),
        ("a%2fb", "character '%'"),
        ("healthz", "reserved"),
        ("healthz/deep", "reserved"),
        ("static", "reserved"),
        ("static/app.css", "reserved"),
        ("_edge/status", "reserved"),
        ("_", "reserved"),
        ("404.html", "reserved for the static site"),
        ("favicon.ico", "reserved for the static site"),
    ],
)
def test_slug_grammar_rejects_with_reason(slug, reason):
    assert reason in (slug_problem(slug) or "")


GOOD_TARGETS = [
    "https://docs.example.com/",
    "http://example.com",
    "HTTPS://Example.COM/Path?q=1#frag",
    "https://example.com:8443/a/b;c?d=e&f=%20g",
    "https://[2001:db8::1]/x",
    "https://example.com/@user",
    "https://xn--bcher-kva.example/",
    "https://example.com/" + "a" * (MAX_TARGET_LENGTH - 20),
]


@pytest.mark.parametrize("url", GOOD_TARGETS)
def test_targets_accepted(url):
    assert target_problem(url) is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (None, "URL string, not empty"),
        (42, "URL string, not a number"),
        ("ftp://example.com/", "absolute http:// or https://"),
        ("javascript:alert(1)", "absolute http:// or https://"),
        ("//example.com/", "absolute http:// or https://"),
        ("/relative", "absolute http:// or https://"),
        ("https://user:pass@example.com/", "credentials"),
        ("https://user@example.com/", "credentials"),
        ("https://example.com/a b", "whitespace or a control character"),
        ("https://example.com/\r\nSet-Cookie: x", "whitespace or a control character"),
        ("https://example.com/\x00", "whitespace or a control character"),
        ("https://example.com/%0d%0aSet-Cookie:x", "percent-encoded control character '%0d'"),
        ("https://example.com/%0A", "percent-encoded control character '%0A'"),
        ("https://example.com/%7f", "percent-encoded control character"),
        ("https://example.com\\@evil.com/", "backslash"),
        ("https://exämple.com/", "non-ASCII character 'ä'"),
        ("https://example.com:99999/", "invalid port"),
        ("https://example.com:0/", "invalid"),
        ("https://-bad-.com/", "invalid host"),
        ("https:///path", "invalid host"),
        ("https://example.com/" + "a" * MAX_TARGET_LENGTH, "limit is 2048"),
    ],
)
def test_targets_rejected_with_reason(url, reason):
    assert reason in (target_problem(url) or "")


@pytest.mark.parametrize(
    ("path", "slug"),
    [
        ("/docs", "docs"),
        ("/Docs", "docs"),
        ("/DOCS/", "docs"),
        ("/rfc/template", "rfc/template"),
        ("docs", "docs"),
    ],
)
def test_request_paths_normalise_like_the_index(path, slug):
    assert request_slug(path) == slug


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "",
        "//evil.com",
        "/../etc/passwd",
        "/a/../b",
        "/%2e%2e/x",
        "/d%C3%B6cs",
        "/dоcs",
        "/docs%0d%0aLocation:%20https://evil",
        "/%zz",
        "/%",
        # rawPath arrives decoded: escapes left in it were escaped twice on the wire
        "/%64ocs",
        "/rfc%2Ftemplate",
        "/healthz",
        "/static/404.html",
        "/_edge/status",
        "/" + "a" * 10_000,
        "/a b",
    ],
)
def test_request_paths_that_no_slug_can_match(path):
    assert request_slug(path) is None


def test_stored_value_round_trips_every_field():
    link = Link("x", "https://example.com/a b?c", 307, 1_800_000_000, True)
    stored = decode_value(encode_value(link))
    assert (stored.status, stored.forward_query, stored.expires, stored.url) == (
        307,
        True,
        1_800_000_000,
        link.url,
    )
    plain = decode_value(encode_value(Link("y", "https://example.com/")))
    assert (plain.status, plain.forward_query, plain.expires) == (302, False, 0)
