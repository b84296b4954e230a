"""The pages the redirect function answers instead of a redirect: unknown link (404)
and expired link (410).

Imported only when such a page is answered, so the redirect path never pays
for it. They look like the static site: same stylesheet and icon, which
CloudFront serves from the site bucket on the same host. Everything that came
from the request is escaped for HTML, and percent-encoded inside URLs: nothing
typed can inject markup or leave the URL it is put in.

When the stack names its GitHub repository, the 404 for a possible slug offers
"Create go/<slug>": GitHub's new-file page (`/new/<branch>?filename=&value=`)
for `links/<slug>.yaml`, prefilled with a valid link file to edit.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote, urlencode

from functions.links.model import DIRECTORY_PAGE

#: The branch links are published from; new link files are proposed against it.
LINKS_BRANCH = "main"
#: Where a new link leads until its author edits the file.
PLACEHOLDER_URL = "https://example.com/"
#: How much of an unusable typed path the page repeats.
SHOWN_PATH_LENGTH = 200

_HEAD = (
    '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
    "<title>{title} — go/</title>\n"
    '<link rel="stylesheet" href="/static/site.css">\n'
    '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">\n'
    "</head>\n<body>\n<main>\n"
    '<p class="brand"><a href="/">go/</a></p>\n'
)
_FOOT = "</main>\n</body>\n</html>\n"


def not_found_page(typed: str, slug: str | None, repository_url: str | None) -> str:
    """The 404 page for a request path `typed`; `slug` is its normalised form, None when
    no link could ever have that name. With `repository_url`, it offers to create it."""
    if slug is None:
        shown = typed.lstrip("/")
        if len(shown) > SHOWN_PATH_LENGTH:
            shown = shown[:SHOWN_PATH_LENGTH] + "…"
        name = f"go/{escape(shown)}"
        body = (
            f"<h1>No link <code>{name}</code></h1>\n"
            "<p>Link names are lowercase letters, digits, <code>-</code>, <code>_</code>, "
            "<code>.</code> and <code>/</code> between words, so no link can have this one.</p>\n"
        )
        return _HEAD.format(title="Not a link name") + body + _links_footer() + _FOOT
    name = f"go/{escape(slug)}"
    body = (
        f"<h1>No link <code>{name}</code> yet</h1>\n"
        f"<p>Nobody has made <code>{name}</code>. Check the spelling, or look through "
        f'<a href="/{DIRECTORY_PAGE}">every link</a>.</p>\n'
    )
    if repository_url:
        url = escape(new_link_url(repository_url, slug))
        body += (
            f'<p><a class="button" href="{url}">Create {name}</a></p>\n'
            f'<p class="muted">Opens GitHub with <code>links/{escape(slug)}.yaml</code> '
            "filled in: set where it leads, then propose the change.</p>\n"
        )
    return _HEAD.format(title=f"No {name}") + body + _FOOT


def gone_page(slug: str) -> str:
    """The 410 page for a link whose expiry has passed."""
    name = f"go/{escape(slug)}"
    body = (
        f"<h1><code>{name}</code> has expired</h1>\n"
        "<p>Its owner set it to stop working on a date that has passed.</p>\n"
    )
    return _HEAD.format(title=f"{name} expired") + body + _links_footer() + _FOOT


def _links_footer() -> str:
    return (
        '<p class="muted"><a href="/">Start page</a> · '
        f'<a href="/{DIRECTORY_PAGE}">Every link</a></p>\n'
    )


def new_link_file(slug: str) -> str:
    """A link file that defines `slug` with a placeholder target; the validator accepts it."""
    return (
        f"# go/{slug}: replace the url with where it should lead, then propose the change.\n"
        f'"{slug}":\n'  # quoted: a slug such as `yes` or `1e3` must stay a string
        f"  url: {PLACEHOLDER_URL}\n"
        f'  description: "What go/{slug} is for"\n'
    )


def new_link_url(repository_url: str, slug: str) -> str:
    """GitHub's new-file page for `links/<slug>.yaml`, prefilled with `new_link_file`."""
    query = urlencode(
        {"filename": f"links/{slug}.yaml", "value": new_link_file(slug)}, quote_via=quote
    )
    return f"{repository_url.rstrip('/')}/new/{LINKS_BRANCH}?{query}"
