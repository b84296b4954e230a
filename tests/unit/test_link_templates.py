"""Templated links, owners and descriptions: validation, expansion, matching, the index."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.links.index import Index, InvalidIndex, build_index
from functions.links.model import (
    Link,
    StoredLink,
    description_problem,
    expand,
    find_template,
    owner_problem,
    redirect_location,
    target_problem,
    template_requests,
)
from functions.links.source import LinkErrors, load_links

TEMPLATES = [
    "https://jira.example.com/browse/{path}",
    "https://search.example.com/?q={path}&lang=en",
    "http://10.0.0.1:8080/{path}",
    "https://example.com/a/{path}/b#top",
    "https://example.com/{path}",
]


@pytest.mark.parametrize("url", TEMPLATES)
def test_path_may_stand_once_in_the_path_or_query(url):
    assert target_problem(url) is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://{path}.example.com/", "never in its scheme, host, port or fragment"),
        ("https://example.com{path}", "never in its scheme, host, port or fragment"),
        ("https://example.com:{path}/", "never in its scheme, host, port or fragment"),
        ("https://u{path}@example.com/", "never in its scheme, host, port or fragment"),
        ("{path}://example.com/", "never in its scheme, host, port or fragment"),
        ("https://example.com/#{path}", "never in its scheme, host, port or fragment"),
        ("https://example.com/{path}/{path}", "only once"),
        ("https://example.com/{query}", "'{query}': the only placeholder is {path}"),
        ("https://example.com/{PATH}", "'{PATH}': the only placeholder is {path}"),
        ("https://example.com/{path", "'{path': the only placeholder"),
        ("https://example.com/a}", "'}': the only placeholder"),
        ("https://example.com/{}", "'{}': the only placeholder"),
    ],
)
def test_any_other_placeholder_or_position_is_refused(url, reason):
    assert reason in target_problem(url)


@pytest.mark.parametrize(
    ("path", "candidates"),
    [
        ("/jira/ABC-1", [("jira", "ABC-1")]),
        ("/Jira/ABC-1/", [("jira", "ABC-1/")]),
        ("/a/b/c", [("a/b", "c"), ("a", "b/c")]),
        ("/jira//evil.example", [("jira", "/evil.example")]),
        ("/jira/a b/c", [("jira", "a b/c")]),
        ("/jira", []),
        ("/", []),
        ("/_links/x", []),
        ("/ｊira/x", []),
        ("/" + "a/" * 3000, []),  # longer than any request a template answers
    ],
)
def test_template_candidates_are_the_shorter_possible_slugs_longest_first(path, candidates):
    assert template_requests(path) == candidates


def test_the_longest_templated_prefix_answers_and_plain_links_are_not_prefixes():
    links = {
        "a": StoredLink(302, False, 0, "https://a.example/{path}"),
        "a/b": StoredLink(302, False, 0, "https://ab.example/{path}"),
        "a/b/c": StoredLink(302, False, 0, "https://plain.example/"),
    }
    reads = []

    def links_for(slugs):
        reads.append(slugs)
        return [links.get(slug) for slug in slugs]

    assert find_template("/a/b/c/d", links_for)[:2] == ("a/b", "c/d")
    assert reads == [["a/b/c", "a/b", "a"]]  # one read for every candidate
    assert find_template("/a/x", links_for)[:2] == ("a", "x")
    del links["a"], links["a/b"]
    assert find_template("/a/b/c/d", links_for) is None


@pytest.mark.parametrize(
    ("url", "rest", "location"),
    [
        ("https://j.example/browse/{path}", "ABC-1", "https://j.example/browse/ABC-1"),
        ("https://j.example/browse/{path}", "", "https://j.example/browse/"),
        ("https://j.example/{path}", "a b/ü/", "https://j.example/a%20b/%C3%BC/"),
        ("https://s.example/?q={path}&x=1", "a&b=c#d", "https://s.example/?q=a%26b%3Dc%23d&x=1"),
        (
            "https://j.example/{path}",
            "\r\nSet-Cookie: a",
            "https://j.example/%0D%0ASet-Cookie%3A%20a",
        ),
        ("https://j.example/{path}", "..\\evil", "https://j.example/..%5Cevil"),
    ],
)
def test_the_rest_is_encoded_per_segment(url, rest, location):
    assert expand(url, rest) == location


def test_a_template_with_forwarded_query_keeps_both():
    link = StoredLink(302, True, 0, "https://s.example/{path}?a=1#frag")
    assert redirect_location(link, "b=2", "x/y") == "https://s.example/x/y?a=1&b=2#frag"


HOSTILE = st.one_of(
    st.text(max_size=300),
    st.sampled_from(
        [
            "\r\nLocation: https://evil.example",
            "../../..",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example/x",
            "@evil.example",
            ":443@evil.example",
            "x" * 10_000,
            "ｅｖｉｌ.example/\u202e",
            "%2F%2Fevil.example",
            "\ud800",
        ]
    ),
)


@settings(max_examples=400, deadline=None)
@given(template=st.sampled_from(TEMPLATES), rest=HOSTILE)
def test_nothing_substituted_changes_the_scheme_host_or_port(template, rest):
    location = expand(template, rest)
    before, after = urlsplit(template.replace("{path}", "")), urlsplit(location)
    assert (after.scheme, after.netloc) == (before.scheme, before.netloc)
    assert location.isascii() and location.isprintable()
    assert not any(ch in location for ch in "\r\n\\ ")


def test_owner_and_description_are_validated():
    assert owner_problem("platform@example.com") is None
    assert owner_problem("Platform team") is None
    assert owner_problem("sre/oncall") is None
    assert "not a valid e-mail" in owner_problem("me@localhost")
    assert "neither an e-mail address nor a team name" in owner_problem("<script>")
    assert "neither" in owner_problem("x" * 65)
    assert owner_problem(7).endswith("not a number")
    assert description_problem("Where the docs live") is None
    assert "301 characters long; the limit is 300" in description_problem("d" * 301)
    assert "one line" in description_problem("two\nlines")
    assert "empty" in description_problem("  ")


def test_link_files_take_owner_description_and_templates_with_file_and_line(tmp_path):
    (tmp_path / "a.yaml").write_text(
        "jira:\n"
        "  url: https://jira.example.com/browse/{path}\n"
        "  owner: platform@example.com\n"
        "  description: Jira issues by key, e.g. go/jira/ABC-1\n"
        "bad:\n"
        "  url: https://example.com/{slug}\n"
        "  owner: <b>\n"
        "  description: " + "d" * 301 + "\n"
        "  descripton: typo\n"
        "empty:\n"
        "  url: https://example.com/\n"
        "  owner:\n"
    )
    with pytest.raises(LinkErrors) as raised:
        load_links([tmp_path])
    problems = [str(problem).removeprefix(f"{tmp_path}/") for problem in raised.value.problems]
    assert problems == [
        "a.yaml:6: bad: target has '{slug}': the only placeholder is {path} "
        "(write a literal brace as %7B or %7D)",
        "a.yaml:7: bad: owner '<b>' is neither an e-mail address nor a team name (a team name "
        "has up to 64 letters, digits, spaces and . _ / -)",
        "a.yaml:8: bad: description is 301 characters long; the limit is 300",
        "a.yaml:9: bad: unknown key 'descripton' (allowed: url, status, expires, forward_query, "
        "description, owner); did you mean 'description'?",
        "a.yaml:12: empty: owner must be an e-mail address or a team name, not empty",
    ]
    (tmp_path / "a.yaml").write_text(
        "jira:\n  url: https://jira.example.com/browse/{path}\n  owner: Platform\n"
        "  description: Jira issues\n"
    )
    (link,) = load_links([tmp_path])
    assert link == Link(
        "jira",
        "https://jira.example.com/browse/{path}",
        owner="Platform",
        description="Jira issues",
    )


def test_owner_and_description_live_in_the_index_and_change_its_version():
    plain = build_index([Link("jira", "https://jira.example.com/browse/{path}")])
    described = build_index(
        [Link("jira", "https://jira.example.com/browse/{path}", owner="a@example.com")]
    )
    assert plain.version != described.version
    assert Index.from_bytes(described.to_bytes()) == described
    assert json.loads(described.to_bytes())["links"]["jira"]["owner"] == "a@example.com"
    tampered = described.to_bytes().replace(b"a@example.com", b"<script>")
    with pytest.raises(InvalidIndex):
        Index.from_bytes(tampered)
