"""The canonical link index: the one artifact published to S3 and synced to Redis.

Canonical means identical bytes for identical links, whatever the order of
files or entries and however the YAML was written: links sorted by slug,
optional fields omitted at their defaults, compact sorted-key JSON. The version
is a hash of those bytes, so "same version" means "same links".
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from .model import (
    DEFAULT_STATUS,
    REDIRECT_STATUSES,
    Link,
    description_problem,
    owner_problem,
    slug_problem,
    target_problem,
)

INDEX_FORMAT = 1
VERSION_HEX_DIGITS = 16
_FIELDS = frozenset({"url", "status", "expires", "forward_query", "description", "owner"})


class InvalidIndex(ValueError):
    """The bytes are not a valid link index."""


@dataclass(frozen=True)
class Index:
    """Links sorted by slug, with the content-hash version of their canonical form."""

    version: str
    links: tuple[Link, ...]

    @property
    def count(self) -> int:
        return len(self.links)

    def to_bytes(self) -> bytes:
        links_json = _canonical_links(self.links).decode()
        return (
            f'{{"count":{self.count},"format":{INDEX_FORMAT},"links":{links_json},'
            f'"version":"{self.version}"}}\n'
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Index:
        """Parse and verify a published index: canonical, every link valid, version matching."""
        try:
            doc = json.loads(data)
            if not isinstance(doc, dict) or doc.get("format") != INDEX_FORMAT:
                raise InvalidIndex(f"not a link index of format {INDEX_FORMAT}")
            version = _version(_canonical_json(doc["links"]))
            links = tuple(_link(slug, fields) for slug, fields in sorted(doc["links"].items()))
        except InvalidIndex:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidIndex(f"not a link index: {exc!r}") from None
        if version != doc.get("version") or len(links) != doc.get("count"):
            raise InvalidIndex(
                f"index content does not match its version {doc.get('version')!r} "
                f"and count {doc.get('count')!r} (content hashes to {version!r})"
            )
        return cls(version, links)


def build_index(links: Iterable[Link]) -> Index:
    ordered = tuple(sorted(links, key=lambda link: link.slug))
    if any(a.slug == b.slug for a, b in itertools.pairwise(ordered)):
        raise InvalidIndex("duplicate slugs in index")
    return Index(_version(_canonical_links(ordered)), ordered)


def _canonical_links(links: tuple[Link, ...]) -> bytes:
    return _canonical_json({link.slug: _fields(link) for link in links})


def _canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _version(links_json: bytes) -> str:
    digest = hashlib.sha256(b"link-index/%d\n" % INDEX_FORMAT + links_json).hexdigest()
    return digest[:VERSION_HEX_DIGITS]


def _fields(link: Link) -> dict[str, object]:
    fields: dict[str, object] = {"url": link.url}
    if link.status != DEFAULT_STATUS:
        fields["status"] = link.status
    if link.expires is not None:
        fields["expires"] = format_time(link.expires)
    if link.forward_query:
        fields["forward_query"] = True
    if link.description is not None:
        fields["description"] = link.description
    if link.owner is not None:
        fields["owner"] = link.owner
    return fields


def _link(slug: str, fields: dict) -> Link:
    expires = fields.get("expires")
    link = Link(
        slug=slug,
        url=fields["url"],
        status=fields.get("status", DEFAULT_STATUS),
        expires=None if expires is None else int(datetime.fromisoformat(expires).timestamp()),
        forward_query=fields.get("forward_query", False),
        description=fields.get("description"),
        owner=fields.get("owner"),
    )
    problem = (
        slug_problem(slug)
        or target_problem(link.url)
        or (None if _is_status(link.status) else f"bad status {link.status!r}")
        or (None if isinstance(link.forward_query, bool) else "bad forward_query")
        or (None if link.description is None else description_problem(link.description))
        or (None if link.owner is None else owner_problem(link.owner))
        or (None if set(fields) <= _FIELDS else f"unknown fields {sorted(set(fields) - _FIELDS)}")
    )
    if problem:
        raise InvalidIndex(f"link {slug!r}: {problem}")
    return link


def _is_status(value: object) -> bool:
    return type(value) is int and value in REDIRECT_STATUSES


def format_time(unix_seconds: int) -> str:
    return datetime.fromtimestamp(unix_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class LinkDiff:
    """What publishing `version` changes; `changed` pairs the link before (if known) and after."""

    previous_version: str | None
    version: str
    added: tuple[Link, ...] = ()
    changed: tuple[tuple[Link | None, Link], ...] = ()
    removed: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.changed or self.removed)


def diff_indexes(published: Index | None, built: Index) -> LinkDiff:
    """The difference between what is published (None: nothing yet) and what was built."""
    before = {link.slug: link for link in published.links} if published else {}
    after = {link.slug: link for link in built.links}
    return LinkDiff(
        previous_version=published.version if published else None,
        version=built.version,
        added=tuple(link for slug, link in after.items() if slug not in before),
        changed=tuple(
            (before[slug], link)
            for slug, link in after.items()
            if slug in before and before[slug] != link
        ),
        removed=tuple(sorted(slug for slug in before if slug not in after)),
    )
