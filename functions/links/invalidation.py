"""Which CDN paths a publish invalidates, so that every cache answers the new index.

CloudFront caches a redirect for up to `redirectCacheSeconds` and a 404 for
`NOT_FOUND_CACHE_SECONDS`, under the path (and query) the viewer asked for.
After a publish, every slug whose answer changed must leave every cache: the
changed and removed links, and the added ones (a 404 cached before the link
existed). One wildcard path per slug, `/<slug>*`, covers every cached spelling
that starts with it: `/docs`, `/docs/`, `/docs+` (the details page),
`/docs?q=1` (the cache key includes the query) and `/docs/sub` (a templated
link's paths). A wildcard can match more than needed (`/docs*` also drops
`/docsify`); that only costs one cache miss.

CloudFront bills each invalidation path alike, a wildcard included (the first
1,000 paths a month free, then $0.005 a path), and allows at most 15 wildcard
paths in progress per distribution at a time (3,000 exact paths). So a publish
sends one request per distribution with at most WILDCARD_LIMIT paths; a larger
change, or a first publish, invalidates everything with the single path `/*`:
one billed path, and the cost of dropping every cached answer is one origin
request per hot slug and edge location, which a Redis GET answers in
microseconds.
"""

from __future__ import annotations

from .index import Index, diff_indexes

#: CloudFront's maximum of wildcard invalidation paths in progress per distribution.
WILDCARD_LIMIT = 15
EVERYTHING = "/*"
#: Service pages that list every link (`/_links`, `/_links.json`): stale after any change.
DIRECTORY_PATH = "/_links*"


def stale_slugs(published: Index | None, built: Index) -> tuple[str, ...]:
    """Slugs whose answer differs between the published and the built index, sorted."""
    diff = diff_indexes(published, built)
    slugs = {link.slug for link in diff.added}
    slugs.update(after.slug for _, after in diff.changed)
    slugs.update(diff.removed)
    return tuple(sorted(slugs))


def invalidation_paths(
    published: Index | None, built: Index, limit: int = WILDCARD_LIMIT
) -> tuple[str, ...]:
    """The CloudFront invalidation paths for publishing `built` over `published`.

    `("/*",)` when nothing was published before (the caches may hold
    anything), when more than `limit` paths are needed, and when the same
    version is published again: a re-run, maybe of a publish whose
    invalidation never completed, so which answers are stale is unknown.
    """
    if published is None or published.version == built.version:
        return (EVERYTHING,)
    slugs = stale_slugs(published, built)
    paths = _without_covered([f"/{slug}*" for slug in slugs] + [DIRECTORY_PATH])
    return paths if len(paths) <= limit else (EVERYTHING,)


def _without_covered(patterns: list[str]) -> tuple[str, ...]:
    """Drop every wildcard that a shorter one already covers (`/go*` covers `/gone*`)."""
    kept: list[str] = []
    for pattern in sorted(patterns):
        if not (kept and pattern.startswith(kept[-1][:-1])):
            kept.append(pattern)
    return tuple(kept)


def path_matches(pattern: str, cache_key: str) -> bool:
    """Whether an invalidation path removes a cached entry (its path and query).

    A trailing `*` matches any rest, the query included; otherwise the entry
    must be exactly that path.
    """
    if pattern.endswith("*"):
        return cache_key.startswith(pattern[:-1])
    return cache_key == pattern
