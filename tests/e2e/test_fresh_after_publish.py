"""With the edge caching as CloudFront does: a publish ends with every client seeing it,
and a request path is decoded exactly once on its way to the function. For every variant:
one CloudFront per region (Cloudflare) or one for the world (Route 53)."""

from __future__ import annotations

import http.client
import shutil
from collections.abc import Iterator

import pytest

from local.edge import CACHE_HEADER
from local.stack import LocalStack

from .conftest import REPO, Client, publish, start_stack


@pytest.fixture(scope="module")
def cached_stack(tmp_path_factory, variant) -> Iterator[LocalStack]:
    """The local stack with the functions' own cache lifetimes (300 s redirects, 60 s 404s)."""
    local = start_stack(tmp_path_factory, "cached", variant, cache_seconds=None)
    yield local
    local.stop()


def answer(response) -> tuple[int, str | None]:
    return response.status_code, response.headers.get("Location")


def test_after_publish_returns_no_client_anywhere_sees_an_old_answer(cached_stack, tmp_path):
    links = tmp_path / "links"
    shutil.copytree(REPO / "links", links)
    clients = [Client(cached_stack, region) for region in cached_stack.topology.regions]
    paths = ["/docs", "/docs/", "/DOCS", "/jobs?ref=1", "/status", "/brand-new", "/brand-new/"]
    before = {}
    for client in clients:
        for path in paths:
            before[client.region, path] = answer(client.get(path))
            cached = client.get(path)
            # capitals are never cached at the edge: no invalidation path could reach them
            expected_cache = "miss" if path == "/DOCS" else "hit"
            assert cached.headers[CACHE_HEADER] == expected_cache, (client.region, path)
    assert before["us-west-2", "/brand-new"][0] == 404  # a 404 cached before the link exists
    engineering = (links / "engineering.yaml").read_text()
    (links / "engineering.yaml").write_text(
        engineering.replace(
            "docs: https://docs.example.com/", "docs: https://docs.example.com/v2"
        ).replace("status: https://status.example.com/\n", "")
        + "brand-new: https://new.example.com/\n"
    )
    company = (links / "company.yaml").read_text()
    (links / "company.yaml").write_text(
        company.replace("https://jobs.example.com/", "https://careers.example.com/")
    )

    result = publish(cached_stack, links, tmp_path, "--timeout", "30")

    assert result.returncode == 0, result.stdout + result.stderr
    distributions = set(cached_stack.endpoints.distribution_ids.values())
    assert len(distributions) == (1 if cached_stack.router == "route53" else len(clients))
    assert result.stdout.count("completed after") == len(distributions)  # each invalidated once
    expected = {
        "/docs": (302, "https://docs.example.com/v2"),
        "/docs/": (302, "https://docs.example.com/v2"),
        "/DOCS": (302, "https://docs.example.com/v2"),
        "/jobs?ref=1": (301, "https://careers.example.com/?ref=1"),
        "/status": (404, None),
        "/brand-new": (302, "https://new.example.com/"),
        "/brand-new/": (302, "https://new.example.com/"),
    }
    for client in clients:
        for path, new_answer in expected.items():
            assert answer(client.get(path)) == new_answer, (client.region, path)


def raw_get(stack: LocalStack, target: str) -> http.client.HTTPResponse:
    """A request whose target goes on the wire exactly as written (no client normalising)."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.edge.port, timeout=10)
    connection.putrequest("GET", target, skip_accept_encoding=True)
    connection.endheaders()
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


@pytest.mark.parametrize(
    ("target", "status"),
    [
        ("/%64ocs", 302),  # decoded once, by API Gateway
        ("/rfc%2Ftemplate", 302),
        ("/docs%3Fignored", 302),  # API Gateway cuts rawPath at the decoded '?'
        ("/%2564ocs", 404),  # escaped twice: never decoded twice
        ("/./docs", 404),  # forwarded as sent, as CloudFront does; no slug has a '.' segment
        ("/gh/../docs", 404),
        ("/static/../docs", 404),
    ],
)
def test_a_path_is_decoded_exactly_once_end_to_end(cached_stack, target, status):
    assert raw_get(cached_stack, target).status == status
