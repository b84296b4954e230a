"""The link model: what a slug and a target may be, and how one link is stored.

This module is on the redirect function's cold-start path, so it imports only
the standard library pieces the interpreter has already loaded or that cost
well under a millisecond (`re`, `dataclasses`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

#: Statuses a link may answer with. 302 is the default: a temporary redirect
#: keeps browsers asking, so a changed link takes effect.
REDIRECT_STATUSES = (301, 302, 307, 308)
DEFAULT_STATUS = 302

MAX_SLUG_LENGTH = 128
MAX_TARGET_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 300
MAX_TEAM_NAME_LENGTH = 64
#: Longest request path a templated link substitutes; a Location stays a few KB.
MAX_TEMPLATE_PATH_LENGTH = 4096

#: In a target, the rest of the request path after the slug.
PATH_PLACEHOLDER = "{path}"
#: A request for `<slug>+` shows the link's details instead of following it.
DETAILS_SUFFIX = "+"

#: After a link expires it answers 410 Gone for this long, then Redis drops
#: the key by itself (its TTL) and the slug answers 404 like any unknown one.
GONE_RETENTION_SECONDS = 30 * 24 * 3600

#: Paths the service itself answers. Slugs may not take them.
HEALTH_PATH = "healthz"
STATIC_PREFIX = "static"
NOT_FOUND_PAGE = "static/404.html"
ROOT_FILES = frozenset({"index.html", "404.html", "favicon.ico", "robots.txt"})
#: The link directory, generated at publish time into every static-site bucket.
DIRECTORY_PAGE = "_links"
DIRECTORY_JSON = "_links.json"
DIRECTORY_FILES = (DIRECTORY_PAGE, DIRECTORY_JSON)

#: Redis layout: one key per link, so one GET answers one redirect, plus one
#: hash of index metadata. `links:meta` does not start with LINK_KEY_PREFIX.
LINK_KEY_PREFIX = "link:"
META_KEY = "links:meta"

_SEGMENT = r"[a-z0-9_.\-]+"
_SLUG_RE = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
_UNPRINTABLE_RE = re.compile(r"[^\x21-\x7e]")
_ENCODED_CONTROL_RE = re.compile(r"%(?:[01][0-9A-Fa-f]|7[Ff])")
_LABEL = r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?"
_BRACE_RE = re.compile(r"[{}]")
_PLACEHOLDER_RE = re.compile(r"\{[^{}/]{0,20}\}?|\}")
_AUTHORITY_RE = re.compile(r"[^:/?#]*://[^/?#]*")
_EMAIL_RE = re.compile(
    rf"[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~\-]{{1,64}}@(?:{_LABEL}\.)+[a-z]{{2,63}}", re.IGNORECASE
)
_TEAM_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9 ._/\-]*[A-Za-z0-9])?")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
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
    description: str | None = None
    owner: str | None = None
    """An e-mail address or a team name."""


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
    """Why `url` cannot be a redirect target, or None when it can.

    A target may hold `{path}` once, in its path or query (see `expand`).
    """
    if not isinstance(url, str):
        return f"target must be a URL string, not {type_name(url)}"
    if _BRACE_RE.search(url):
        if problem := _template_problem(url):
            return problem
        url = url.replace(PATH_PLACEHOLDER, "")
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


def _template_problem(url: str) -> str | None:
    if bad := _PLACEHOLDER_RE.search(url.replace(PATH_PLACEHOLDER, "")):
        return (
            f"target has {bad.group(0)!r}: the only placeholder is {{path}} "
            "(write a literal brace as %7B or %7D)"
        )
    if url.count(PATH_PLACEHOLDER) > 1:
        return "target may hold {path} only once"
    at = url.index(PATH_PLACEHOLDER)
    authority = _AUTHORITY_RE.match(url)
    if (authority and at < authority.end()) or "#" in url[:at]:
        return (
            "{path} may stand only in the target's path or query, never in its scheme, "
            "host, port or fragment"
        )
    return None


def description_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return f"description must be text, not {type_name(value)}"
    if not value.strip():
        return "description is empty"
    if len(value) > MAX_DESCRIPTION_LENGTH:
        return f"description is {len(value)} characters long; the limit is {MAX_DESCRIPTION_LENGTH}"
    if _CONTROL_RE.search(value):
        return "description must be one line of text, without control characters"
    return None


def owner_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return f"owner must be an e-mail address or a team name, not {type_name(value)}"
    if "@" in value:
        if _EMAIL_RE.fullmatch(value):
            return None
        return f"owner {value!r} is not a valid e-mail address"
    if len(value) <= MAX_TEAM_NAME_LENGTH and _TEAM_RE.fullmatch(value):
        return None
    return (
        f"owner {value!r} is neither an e-mail address nor a team name (a team name has up to "
        f"{MAX_TEAM_NAME_LENGTH} letters, digits, spaces and . _ / -)"
    )


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

    `path` is API Gateway's `rawPath`, which HTTP APIs deliver already
    percent-decoded: it is not decoded again (a '%' left in it was '%25' on the
    wire, and no slug has one). It must be ASCII, is lowercased and loses one
    leading and any trailing '/'. None when no slug could match (the caller
    answers 404 without a lookup).
    """
    if len(path) > MAX_SLUG_LENGTH + 2:
        return None
    if path.startswith("/"):
        path = path[1:]
    slug = path.rstrip("/").lower()
    if not slug.isascii() or len(slug) > MAX_SLUG_LENGTH or not _SLUG_RE.fullmatch(slug):
        return None
    return slug if slug_problem(slug) is None else None


def template_requests(path: str) -> list[tuple[str, str]]:
    """(slug, rest) for each shorter slug a templated link could answer `path` with.

    Longest slug first; `rest` is the rest of the request path after the slug
    and its '/', exactly as requested (case kept, trailing '/' kept). The whole
    path is not a candidate: it is the exact lookup. Empty when no prefix of
    the path is a possible slug.
    """
    if len(path) > MAX_TEMPLATE_PATH_LENGTH:
        return []
    path = path[1:] if path.startswith("/") else path
    parts = path.split("/")
    whole = len(path.rstrip("/").split("/"))
    candidates = []
    for end in range(1, whole):
        if not parts[end - 1]:
            break  # an empty segment: no slug has one
        slug = request_slug("/".join(parts[:end]))
        if slug is None:
            break  # an impossible slug stays impossible with more segments
        candidates.append((slug, "/".join(parts[end:])))
    candidates.reverse()
    return candidates


def find_template(path: str, links_for):
    """(slug, rest, link) of the longest slug that is a prefix of `path` and has a
    template, or None. `links_for(slugs)` returns each slug's link (or None) in
    one read; links without `{path}` are not prefixes.
    """
    candidates = template_requests(path)
    if not candidates:
        return None
    links = links_for([slug for slug, _ in candidates])
    for (slug, rest), link in zip(candidates, links, strict=True):
        if link is not None and PATH_PLACEHOLDER in link.url:
            return slug, rest, link
    return None


def expand(url: str, rest: str) -> str:
    """A templated target with `{path}` replaced by `rest`, percent-encoded per segment.

    Every character but the unreserved ones (letters, digits, - . _ ~) is
    percent-encoded as UTF-8 and '/' between segments is kept, so nothing
    substituted can end the path or query it stands in, or carry CR/LF or a
    backslash; since `{path}` stands after the host (see target_problem),
    the scheme, host and port are never changed.
    """
    encoded = "/".join(quote(part, safe="", errors="surrogatepass") for part in rest.split("/"))
    return url.replace(PATH_PLACEHOLDER, encoded, 1)


def link_key(slug: str) -> str:
    return LINK_KEY_PREFIX + slug


def value_text(link: Link) -> str:
    """The Redis value of a link: `<status> <flags> <expires> <url>`.

    One space-separated ASCII line (targets never contain whitespace) so the hot
    path decodes it with one split. flags: 'q' forwards the query string, '-'
    not. expires: Unix seconds, 0 for never. A templated link's url holds
    `{path}` as written; owner and description are not stored (the index and the
    directory carry them), so a redirect reads only what it needs.
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


def redirect_location(link: StoredLink, raw_query: str, rest: str = "") -> str:
    """Where a request for `link` goes: the target (a template filled with `rest`),
    plus the request's query when asked.

    The query joins the target's own query with '&' and stays before the
    target's fragment. Anything but URL-safe ASCII in it is percent-encoded,
    so the Location header can never carry whitespace or CR/LF.
    """
    target = expand(link.url, rest) if PATH_PLACEHOLDER in link.url else link.url
    if not (link.forward_query and raw_query):
        return target
    query = "".join(ch if ch in _QUERY_SAFE else _percent_encode(ch) for ch in raw_query)
    url, hash_, fragment = target.partition("#")
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


def sequencer_order(sequencer: str) -> str:
    """S3 sequencers of one key compare as hex strings once left-padded to one length."""
    return sequencer.upper().rjust(64, "0")
