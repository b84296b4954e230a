"""`functions.redirect.handler`: one slug, one store read, one redirect.

API Gateway HTTP API, payload format 2.0. Every input is treated as hostile:
anything that is not a well-formed GET/HEAD for a possible slug gets a 4xx
without a lookup, and a Location header only ever carries a target from the
index (plus, for links that ask for it, the request's query, percent-encoded).

The store is the region's Redis reader (one GET) or its replica of the
DynamoDB link table (one GetItem), chosen per container (functions.region).
A request with more segments than its link (`/jira/ABC-1`) that misses costs
one more read of every shorter slug it starts with at once (Redis MGET,
DynamoDB BatchGetItem); the longest holding a `{path}` template answers, filled with the rest of the
path (percent-encoded per segment). `/<slug>+` shows the link's details from
the published index instead of following it (see functions.details).
"""

from __future__ import annotations

import time

from functions import region
from functions.links.model import DETAILS_SUFFIX, find_template, redirect_location, request_slug
from functions.links.model import cache_seconds as link_cache_seconds
from functions.origin import FORBIDDEN, from_cloudfront
from functions.store import StoreUnavailable
from functions.telemetry import log_request

RETRY_AFTER_SECONDS = 5


def handler(event, context=None) -> dict:
    started = time.perf_counter()
    settings = region.settings()
    response, slug, source = answer(event, settings)
    log_request(
        "redirect",
        settings.region,
        event,
        status=response["statusCode"],
        slug=slug,
        source=source,
        started=started,
    )
    return response


def answer(event, settings: region.Settings) -> tuple[dict, str | None, str]:
    """(response, slug, source) for one event; source is the store (redis, dynamodb),
    s3-fallback, miss or none."""
    if not isinstance(event, dict):
        return plain(400, "bad request"), None, "none"
    http = (event.get("requestContext") or {}).get("http") or {}
    method = http.get("method") if isinstance(http, dict) else None
    path = event.get("rawPath") or (http.get("path") if isinstance(http, dict) else None)
    if not isinstance(method, str) or not isinstance(path, str):
        return plain(400, "bad request"), None, "none"
    if settings.origin_verify and not from_cloudfront(event, settings.origin_verify):
        return dict(FORBIDDEN), None, "none"
    if method not in ("GET", "HEAD"):
        response = plain(405, "method not allowed")
        response["headers"]["Allow"] = "GET, HEAD"
        return response, None, "none"
    slug = request_slug(path)
    if slug is None and path.endswith(DETAILS_SUFFIX):
        from functions.details import answer_details  # noqa: PLC0415 - off the hot path

        return answer_details(path[: -len(DETAILS_SUFFIX)], settings, method)
    stored, slug, rest, source = _lookup(slug, path)
    if source == "unavailable":
        return unavailable(), slug, "none"
    if slug is None:
        return not_found(path, None, settings, method), None, "none"
    # CloudFront caches an answer under the path as sent, and a publish invalidates `/<slug>*`
    # (case-sensitive): a spelling with capitals is left to browsers, never to the CDN.
    shared = path == path.lower()
    if stored is None:
        return not_found(path, slug, settings, method, shared), slug, source
    now = time.time()
    if stored.expires and stored.expires <= now:
        return gone(slug, settings, method, shared), slug, source
    query = event.get("rawQueryString")
    location = redirect_location(stored, query if isinstance(query, str) else "", rest)
    max_age = link_cache_seconds(stored, now, settings.redirect_cache_seconds)
    response = {
        "statusCode": stored.status,
        "headers": {"Location": location, "Cache-Control": cache_control(max_age, shared)},
        "body": "",
    }
    return response, slug, source


def _lookup(slug: str | None, path: str):
    """(link, slug, rest, source): the exact slug (one read), else the longest templated
    prefix (one read more); from the S3 index when the store cannot answer."""
    try:
        store = region.links()
        stored = store.get(slug) if slug else None
        if stored:
            return stored, slug, "", store.source
        if found := find_template(path, store.get_many):
            return found[2], found[0], found[1], store.source
        return None, slug, "", "miss"
    except (StoreUnavailable, ValueError):  # ValueError: a value this code did not write
        return _from_fallback(slug, path)


def _from_fallback(slug: str | None, path: str):
    """(link, slug, rest, source) answered by the S3 index the same way Redis answers."""
    from functions.fallback import FallbackUnavailable  # noqa: PLC0415 - off the hot path

    fallback = region.fallback()
    if fallback is None:
        return None, slug, "", "unavailable"
    try:
        stored = fallback.lookup(slug) if slug else None
        if stored is None and (found := find_template(path, fallback.lookup_many)):
            return found[2], found[0], found[1], "s3-fallback"
    except FallbackUnavailable:
        return None, slug, "", "unavailable"
    return stored, slug, "", "s3-fallback"


def unavailable() -> dict:
    response = plain(503, "temporarily unavailable")
    response["headers"]["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def cache_control(max_age: int, shared: bool = True) -> str:
    """`shared=False`: browsers may cache it, CloudFront may not (`s-maxage=0`)."""
    if max_age <= 0:
        return "no-cache"
    return f"public, max-age={max_age}" if shared else f"public, max-age={max_age}, s-maxage=0"


def not_found(
    path: str, slug: str | None, settings: region.Settings, method: str, shared: bool = True
) -> dict:
    """The 404 page for `path` (`slug`: its normalised form, None when it cannot be one)."""
    from functions.pages import not_found_page  # noqa: PLC0415 - off the redirect path

    html = "" if method == "HEAD" else not_found_page(path, slug, settings.links_repository_url)
    return page(404, html, settings.not_found_cache_seconds, method, shared)


def gone(slug: str, settings: region.Settings, method: str, shared: bool = True) -> dict:
    from functions.pages import gone_page  # noqa: PLC0415 - off the redirect path

    html = "" if method == "HEAD" else gone_page(slug)
    return page(410, html, settings.not_found_cache_seconds, method, shared)


def page(status: int, html: str, max_age: int, method: str, shared: bool = True) -> dict:
    return {
        "statusCode": status,
        "headers": {
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": cache_control(max_age, shared),
        },
        "body": "" if method == "HEAD" else html,
    }


def plain(status: int, text: str) -> dict:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"},
        "body": text + "\n",
    }
