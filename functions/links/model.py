"""The link model: what a slug and a target may be, and how one link is stored.

This module is on the redirect function's cold-start path, so it imports only
the standard library pieces the interpreter has already loaded or that cost
well under a millisecond (`re`, `dataclasses`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

#: Statuses a link may answer with. 302 is the default: a temporary redirect
#: keeps browsers asking, so a changed link takes effect.
REDIRECT_STATUSES = (301, 302, 307, 308)
DEFAULT_STATUS = 302

MAX_SLUG_LENGTH = 128
MAX_TARGET_LENGTH = 2048

#: After a link expires it answers 410 Gone for this long, then Redis drops
#: the key by itself (its TTL) and the slug answers 404 like any unknown one.
GONE_RETENTION_SECONDS = 30 * 24 * 3600

#: Paths the service itself answers. Slugs may not take them.
HEALTH_PATH = "healthz"
STATIC_PREFIX = "static"
NOT_FOUND_PAGE = "static/404.html"
ROOT_FILES = frozenset({"index.html", "404.html", "favicon.ico", "robots.txt"})

#: Redis layout: one key per link, so one GET answers one redirect, plus one
#: hash of index metadata. `links:meta` does not start with LINK_KEY_PREFIX.
LINK_KEY_PREFIX = "link:"
META_KEY = "links:meta"

_SEGMENT = r"[a-z0-9_.\-]+"
_SLUG_RE = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
_PERCENT_ESCAPE_RE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNPRINTABLE_RE = re.compile(r"[^\x21-\x7e]")
_ENCODED_CONTROL_RE = re.compile(r"%(?:[01][0-9A-Fa-f]|7[Ff])")
_LABEL = r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?"
#: The whole grammar of a valid target (checked after the character rules).
_TARGET_RE = re.compile(
    rf"https?://(?:(?:{_LABEL}\.)*{_LABEL}\.?|\[[0-9a-f:.]+\])"
    r"(?::(?P<port>[1-9][0-9]{0,4}))?"
    r"(?:[/?#][\x21-\x7e]*)?",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Link:
    """One short link, as validated from `links/*.yaml`.

    `expires` is a Unix time in whole seconds (UTC), or None for never.
    """

    slug: str
    url: str
    status: int = DEFAULT_STATUS
    expires: int | None = None
    forward_query: bool = False


def slug_problem(slug: str) -> str | None:
    """Why `slug` cannot be a slug in the index, or None when it can."""
    if len(slug) <= MAX_SLUG_LENGTH and _SLUG_RE.fullmatch(slug):
        if ".." in slug:
            return "slug may not contain '..'"
        if slug == "." or slug.startswith("./") or "/./" in slug or slug.endswith("/."):
            return "slug may not have a '.' segment (browsers remove it)"
        return reserved_problem(slug)
    if not slug:
        return "slug is empty"
    if len(slug) > MAX_SLUG_LENGTH:
        return f"slug is {len(slug)} characters long; the limit is {MAX_SLUG_LENGTH}"
    if not slug.isascii():
        bad = next(ch for ch in slug if not ch.isascii())
        return f"slug has a non-ASCII character {bad!r} (U+{ord(bad):04X}); slugs are ASCII only"
    if slug != slug.lower():
        return f"slug must be lowercase; write {slug.lower()!r}"
    if slug.startswith("/") or slug.endswith("/"):
        return "slug may not start or end with '/'"
    if "//" in slug:
        return "slug has an empty segment ('//')"
    bad = next(ch for ch in slug if not re.fullmatch(r"[a-z0-9_./\-]", ch))
    return f"slug has the character {bad!r}; allowed: a-z 0-9 - _ . and / between segments"


def reserved_problem(slug: str) -> str | None:
    """Why `slug` is a path the service itself uses, or None."""
    first = slug.split("/", 1)[0]
    if first.startswith("_"):
        return "slugs starting with '_' are reserved for the service"
    if first in (HEALTH_PATH, STATIC_PREFIX):
        return f"'{first}' is reserved for the service"
    if slug in ROOT_FILES:
        return f"'{slug}' is reserved for the static site"
    return None


def target_problem(url: object) -> str | None:
    """Why `url` cannot be a redirect target, or None when it can."""
    if not isinstance(url, str):
        return f"target must be a URL string, not {type_name(url)}"
    if len(url) > MAX_TARGET_LENGTH:
        return f"target is {len(url)} characters long; the limit is {MAX_TARGET_LENGTH}"
    if bad := _UNPRINTABLE_RE.search(url):
        ch = bad.group(0)
        if not ch.isascii():
            return (
                f"target has a non-ASCII character {ch!r}; percent-encode it "
                "(or use the punycode form of the host)"
            )
        return "target has whitespace or a control character"
    if encoded := _ENCODED_CONTROL_RE.search(url):
        return f"target has a percent-encoded control character {encoded.group(0)!r}"
    if "\\" in url:
        return "target has a backslash (browsers read it as '/')"
    valid = _TARGET_RE.fullmatch(url)
    if valid and int(valid.group("port") or 1) < 65536:
        return None
    # Invalid: find the reason a person can act on.
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not url.lower().startswith(parts.scheme + "://"):
        return "target must be an absolute http:// or https:// URL"
    if "@" in parts.netloc:
        return "target may not carry user credentials ('user:pass@')"
    if valid:
        return f"target has an invalid port in {parts.netloc!r}"
    return f"target has an invalid host {parts.netloc!r}"


def type_name(value: object) -> str:
    """A reader's name for a YAML value's type."""
    return {
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "true/false",
        list: "a list",
        dict: "a mapping",
        type(None): "empty",
    }.get(type(value), type(value).__name__)


def request_slug(path: str) -> str | None:
    """The slug a request path asks for, normalised the way the index is.

    Percent-escapes are decoded once; the result must be ASCII, is lowercased
    and loses one leading and any trailing '/'. None when no slug could match
    (the caller answers 404 without a lookup).
    """
    if len(path) > 3 * MAX_SLUG_LENGTH + 2:
        return None
    if "%" in path:
        if _PERCENT_ESCAPE_RE.sub("", path).count("%"):
            return None
        try:
            path = _PERCENT_ESCAPE_RE.sub(lambda m: chr(int(m.group(1), 16)), path)
        except ValueError:
            return None
    if path.startswith("/"):
        path = path[1:]
    slug = path.rstrip("/").lower()
    if not slug.isascii() or len(slug) > MAX_SLUG_LENGTH or not _SLUG_RE.fullmatch(slug):
        return None
    return slug if slug_problem(slug) is None else None


def link_key(slug: str) -> str:
    return LINK_KEY_PREFIX + slug


def value_text(link: Link) -> str:
    """The Redis value of a link: `<status> <flags> <expires> <url>`.

    One space-separated ASCII line (targets never contain whitespace) so the hot
    path decodes it with one split. flags: 'q' forwards the query string, '-'
    not. expires: Unix seconds, 0 for never.
    """
    return f"{link.status} {'q' if link.forward_query else '-'} {link.expires or 0} {link.url}"


def encode_value(link: Link) -> bytes:
    return value_text(link).encode()


@dataclass(frozen=True, slots=True)
class StoredLink:
    """A link as the redirect path reads it back from Redis or the index."""

    status: int
    forward_query: bool
    expires: int
    url: str


def decode_value(value: bytes) -> StoredLink:
    status, flags, expires, url = value.decode().split(" ", 3)
    return StoredLink(int(status), flags == "q", int(expires), url)


def stored_link(link: Link) -> StoredLink:
    return StoredLink(link.status, link.forward_query, link.expires or 0, link.url)


_QUERY_SAFE = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/?%"
)


def redirect_location(link: StoredLink, raw_query: str) -> str:
    """Where a request for `link` goes: the target, plus the request's query when asked.

    The query joins the target's own query with '&' and stays before the
    target's fragment. Anything but URL-safe ASCII in it is percent-encoded,
    so the Location header can never carry whitespace or CR/LF.
    """
    if not (link.forward_query and raw_query):
        return link.url
    query = "".join(ch if ch in _QUERY_SAFE else _percent_encode(ch) for ch in raw_query)
    url, hash_, fragment = link.url.partition("#")
    separator = "" if url.endswith(("?", "&")) else "&" if "?" in url else "?"
    joined = f"{url}{separator}{query}"
    return f"{joined}{hash_}{fragment}"


def _percent_encode(ch: str) -> str:
    return "".join(f"%{byte:02X}" for byte in ch.encode("utf-8", "surrogatepass"))


def cache_seconds(link: StoredLink, now: float, default: int) -> int:
    """How long a redirect may be cached: never past the link's expiry."""
    if link.expires:
        return max(0, min(default, int(link.expires - now)))
    return default
