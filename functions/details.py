"""`/<slug>+`: a link's details instead of the redirect.

Details come from the published index in the region's S3 bucket (the one the
redirect fallback keeps in memory): it holds every field, owner and
description included, and its version is the published one. Redis keeps only
what a redirect needs, so the redirect path stays one GET; this path, rarely
used, pays for boto3 and the index load once per container.
"""

from __future__ import annotations

from functions import region
from functions.fallback import FallbackUnavailable
from functions.links.model import find_template, request_slug
from functions.links.pages import details_page
from functions.redirect import not_found, page, unavailable


def answer_details(path: str, settings: region.Settings, method: str):
    """(response, slug, source) for the details of the link `path` names."""
    fallback = region.fallback()
    if fallback is None:
        return unavailable(), None, "none"
    try:
        version, links = fallback.details()
    except FallbackUnavailable:
        return unavailable(), None, "none"
    slug, rest = request_slug(path), None
    link = links.get(slug) if slug else None
    if link is None and (found := find_template(path, lambda slugs: map(links.get, slugs))):
        slug, rest, link = found
    shared = path == path.lower()  # as for redirects: what a publish's invalidation reaches
    if link is None:
        return not_found(path, slug, settings, method, shared), slug, "s3-index"
    html = details_page(link, version, rest)
    return page(200, html, settings.not_found_cache_seconds, method, shared), slug, "s3-index"
