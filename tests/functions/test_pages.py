"""The 404 and 410 pages of the real redirect handler: the typed slug, escaped, and a
"Create go/<slug>" link to GitHub's new-file page, prefilled with a link file that
the validator accepts."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.links.model import request_slug
from functions.links.source import load_links
from functions.pages import PLACEHOLDER_URL, new_link_url, not_found_page
from functions.redirect import handler

from .conftest import clear_function_caches, http_event

REPOSITORY_URL = "https://github.com/example/golinks"
PAGE_TAGS = {"html", "head", "meta", "title", "link", "body", "main", "p", "a", "h1", "code"}


class Page(HTMLParser):
    """Every tag and link of a page, and its text."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.links: dict[str, str] = {}  # text -> href
        self.text = ""
        self._href: str | None = None
        self._link_text = ""
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "a":
            self._href, self._link_text = dict(attrs)["href"], ""

    def handle_endtag(self, tag):
        if tag == "a" and self._href is not None:
            self.links[self._link_text] = self._href
            self._href = None

    def handle_data(self, data):
        self.text += data
        if self._href is not None:
            self._link_text += data


def get(path: str, method: str = "GET") -> dict:
    return handler(http_event(path, method=method), None)


@pytest.fixture
def with_repository(serving, monkeypatch):
    """The serving container, configured with the stack's repository."""
    monkeypatch.setenv("LINKS_REPOSITORY_URL", REPOSITORY_URL)
    clear_function_caches()


def created_link_file(create_url: str, tmp_path: Path) -> tuple[str, list]:
    """Write what GitHub's new-file page would commit; (filename, links it defines)."""
    url = urlsplit(create_url)
    assert (url.scheme, url.netloc, url.path) == (
        "https",
        "github.com",
        "/example/golinks/new/main",
    )
    query = parse_qs(url.query, strict_parsing=True)
    assert set(query) == {"filename", "value"}
    (filename,), (content,) = query["filename"], query["value"]
    path = tmp_path / filename
    assert path.resolve().is_relative_to(tmp_path / "links")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return filename, load_links([tmp_path / "links"])


def test_an_unknown_link_offers_to_create_it_with_a_valid_link_file(with_repository, tmp_path):
    response = get("/Team/New-Thing/")
    assert response["statusCode"] == 404
    assert response["headers"]["Content-Type"] == "text/html; charset=utf-8"
    page = Page(response["body"])
    assert "No link go/team/new-thing yet" in page.text
    create = page.links["Create go/team/new-thing"]
    filename, links = created_link_file(create, tmp_path)
    assert filename == "links/team/new-thing.yaml"
    assert [(link.slug, link.url) for link in links] == [("team/new-thing", PLACEHOLDER_URL)]
    assert set(PAGE_TAGS) >= set(page.tags)
    assert get("/team/new-thing", method="HEAD")["body"] == ""


@pytest.mark.parametrize("slug", ["yes", "null", "1e3", "0x10", "on", "a.b", "-x", "x_y/z"])
def test_slugs_that_yaml_would_read_as_something_else_stay_strings(slug, tmp_path):
    _, links = created_link_file(new_link_url(REPOSITORY_URL, slug), tmp_path)
    assert [link.slug for link in links] == [slug]


def test_without_a_repository_the_page_shows_the_slug_only(serving):
    page = Page(get("/nope")["body"])
    assert "No link go/nope yet" in page.text
    assert not any(text.startswith("Create") for text in page.links)
    assert page.links["every link"] == "/_links"


def test_a_path_that_cannot_be_a_slug_is_shown_escaped_without_an_offer(with_repository):
    response = get('/<img src=x onerror="alert(1)">')
    assert response["statusCode"] == 404
    assert "<img" not in response["body"] and "&lt;img src=x onerror=&quot;" in response["body"]
    page = Page(response["body"])
    assert 'go/<img src=x onerror="alert(1)">' in page.text
    assert not any(text.startswith("Create") for text in page.links)
    assert set(PAGE_TAGS) >= set(page.tags)


def test_an_expired_link_has_its_own_page(serving):
    response = get("/old")
    assert response["statusCode"] == 410
    page = Page(response["body"])
    assert "go/old has expired" in page.text and page.links["Start page"] == "/"
    assert get("/old", method="HEAD")["body"] == ""


def test_every_page_uses_the_sites_stylesheet_and_icon(serving):
    for body in (get("/nope")["body"], get("/old")["body"], get("/%3Cb%3E")["body"]):
        assert '<link rel="stylesheet" href="/static/site.css">' in body
        assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in body


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    typed=st.text(max_size=150) | st.from_regex(r"[A-Za-z0-9][a-z0-9._/-]{0,60}", fullmatch=True)
)
def test_nothing_typed_injects_markup_or_breaks_the_create_url(typed, tmp_path_factory):
    path = "/" + typed
    slug = request_slug(path)
    html = not_found_page(path, slug, REPOSITORY_URL)
    page = Page(html)
    assert set(PAGE_TAGS) >= set(page.tags), page.tags
    assert page.tags.count("a") == len(page.links) <= 3
    for href in page.links.values():
        assert href in ("/", "/_links") or href.startswith(f"{REPOSITORY_URL}/new/main?")
    creates = [href for text, href in page.links.items() if text.startswith("Create")]
    if slug is None:
        assert creates == []
        return
    assert f"go/{slug}" in page.text
    _, links = created_link_file(creates[0], tmp_path_factory.mktemp("links"))
    assert [link.slug for link in links] == [slug]
