"""The canonical index: deterministic bytes, a content-hash version, verified on read."""

import json

import pytest

from functions.links.index import Index, InvalidIndex, build_index, diff_indexes
from functions.links.model import Link

LINKS = [
    Link("docs", "https://docs.example.com/"),
    Link("gh", "https://github.com/example", 301, 1798761600, True),
    Link("a/b", "https://example.com/ab", 308),
]


def test_bytes_and_version_do_not_depend_on_input_order():
    forward, backward = build_index(LINKS), build_index(reversed(LINKS))
    assert forward.to_bytes() == backward.to_bytes()
    assert [link.slug for link in forward.links] == ["a/b", "docs", "gh"]


def test_the_format_is_stable():
    # A format change makes every region rewrite every key: change this on purpose only.
    index = build_index(LINKS)
    assert index.to_bytes() == (
        b'{"count":3,"format":1,"links":{"a/b":{"status":308,"url":"https://example.com/ab"},'
        b'"docs":{"url":"https://docs.example.com/"},"gh":{"expires":"2027-01-01T00:00:00Z",'
        b'"forward_query":true,"status":301,"url":"https://github.com/example"}},'
        b'"version":"' + index.version.encode() + b'"}\n'
    )
    assert index.version == "845ddbac97e20afe"


def test_any_change_changes_the_version():
    base = build_index(LINKS).version
    variants = [
        [*LINKS[:2], Link("a/b", "https://example.com/ab", 307)],
        [*LINKS[:2], Link("a/b", "https://example.com/ab", 308, forward_query=True)],
        [*LINKS[:2], Link("a/b", "https://example.com/ab", 308, expires=1)],
        [*LINKS[:2], Link("a/c", "https://example.com/ab", 308)],
        LINKS[:2],
    ]
    versions = {build_index(links).version for links in variants}
    assert base not in versions and len(versions) == len(variants)


def test_round_trip():
    index = build_index(LINKS)
    assert Index.from_bytes(index.to_bytes()) == index


def test_duplicate_slugs_cannot_be_built():
    with pytest.raises(InvalidIndex, match="duplicate"):
        build_index([LINKS[0], LINKS[0]])


def tampered(mutate) -> bytes:
    doc = json.loads(build_index(LINKS).to_bytes())
    mutate(doc)
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["links"]["docs"].update(url="https://evil.example/"), "does not match"),
        (lambda d: d.update(count=4), "does not match"),
        (lambda d: d["links"]["docs"].update(url="javascript:alert(1)"), "absolute http"),
        (lambda d: d["links"]["docs"].update(url="https://x.example/\r\nX: y"), "control"),
        (lambda d: d["links"]["docs"].update(status=200), "bad status"),
        (lambda d: d["links"]["docs"].update(status=301.0), "bad status"),
        (lambda d: d["links"]["docs"].update(extra=1), "unknown fields"),
        (lambda d: d["links"].update({"../x": {"url": "https://x.example/"}}), "'..'"),
        (lambda d: d.update(format=2), "format 1"),
        (lambda d: d.pop("links"), "not a link index"),
    ],
)
def test_a_tampered_or_invalid_index_is_refused(mutate, message):
    with pytest.raises(InvalidIndex, match=message):
        Index.from_bytes(tampered(mutate))


@pytest.mark.parametrize("data", [b"", b"[]", b"null", b"{not json", b"\xff\xfe"])
def test_garbage_is_refused(data):
    with pytest.raises(InvalidIndex):
        Index.from_bytes(data)


def test_diff_between_indexes():
    before = build_index(LINKS)
    after = build_index(
        [LINKS[0], Link("gh", "https://github.com/other", 301), Link("new", "https://n.example/")]
    )
    diff = diff_indexes(before, after)
    assert [link.slug for link in diff.added] == ["new"]
    assert [(b.url, a.url) for b, a in diff.changed] == [
        ("https://github.com/example", "https://github.com/other")
    ]
    assert diff.removed == ("a/b",)
    assert diff_indexes(after, after).is_empty
    first = diff_indexes(None, after)
    assert first.previous_version is None and len(first.added) == 3
