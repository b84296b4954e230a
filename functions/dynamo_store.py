"""The redirect and health functions' view of the link table in their own region.

A redirect is one eventually consistent GetItem of the slug's item in the
local replica. Which of the item's entries answers depends on the generation
this region serves: its pointer item, read at most once per POINTER_REFRESH_S
per container (so the pointer costs one read a second, not one per request).
The writer moves a region's pointer only once that region holds every item of
the new generation, and keeps the entries the old one needs until every
region's readers have moved on, so each answer comes from one whole index
version (docs/dynamodb-store.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from functions.lean_dynamo import DynamoUnavailable, LeanDynamo
from functions.links.dynamo_items import ENTRIES, KEY, region_key, value_at
from functions.links.model import GONE_RETENTION_SECONDS, StoredLink, decode_value
from functions.store import FailureGuard

#: How stale a container's idea of its region's generation may get. The
#: writer waits this long (plus a margin) after a region's pointer moved
#: before it drops what the previous generation needed.
POINTER_REFRESH_S = 1.0


class NoIndexYet(DynamoUnavailable):
    """The region's pointer item is absent: nothing was published to this region yet."""


@dataclass(frozen=True)
class Served:
    """The index a region serves: its generation, version (content hash) and link count."""

    generation: int
    version: str
    count: int


class DynamoLinks:
    """Links as one region's replica of the table serves them.

    `guard`: skips the table for a moment after it failed (the functions use
    one; None: every call tries).
    """

    source = "dynamodb"

    def __init__(
        self,
        client: LeanDynamo,
        table: str,
        region: str,
        *,
        refresh_s: float = POINTER_REFRESH_S,
        clock=time.monotonic,
        guard: FailureGuard | None = None,
    ):
        self.client = client
        self.table = table
        self.pointer_key = region_key(region)
        self.refresh_s = refresh_s
        self.clock = clock
        self.guard = guard or FailureGuard("DynamoDB", retry_after_s=0.0)
        self._served: Served | None = None
        self._read_at = float("-inf")

    def served(self, *, fresh: bool = False) -> Served:
        """The index this region serves; NoIndexYet when it serves none yet.

        `fresh`: read the pointer now (health), not the one read within refresh_s.
        """
        now = self.clock()
        if fresh or self._served is None or now - self._read_at >= self.refresh_s:
            item = self.guard.call(self.client.get_item, self.table, KEY, self.pointer_key)
            if item is None:
                raise NoIndexYet("this region holds no link index yet")
            try:
                served = Served(int(item["g"]["N"]), item["version"]["S"], int(item["count"]["N"]))
            except (KeyError, TypeError, ValueError):
                raise DynamoUnavailable("the region's pointer item is not this store's") from None
            self._served, self._read_at = served, now
        return self._served

    def lookup(self, slug: str, now: float | None = None) -> tuple[StoredLink | None, Served]:
        """The link `slug` names in the served index (None: unknown there), and that index.

        DynamoDB holds on to an expired link until a later publish removes it,
        so the gone-period ends here, when Redis's TTL would have dropped the key.
        """
        served = self.served()
        item = self.guard.call(self.client.get_item, self.table, KEY, slug)
        return _link_at(item, slug, served.generation, now), served

    def get(self, slug: str) -> StoredLink | None:
        """The redirect's exact lookup: one GetItem (and the pointer once a second)."""
        return self.lookup(slug)[0]

    def lookup_many(self, slugs: list[str]) -> tuple[list[StoredLink | None], Served]:
        """Each slug's link in the served index (up to 100 slugs, one BatchGetItem), and
        that index."""
        served = self.served()
        items = self.guard.call(self.client.batch_get_item, self.table, KEY, slugs)
        return [_link_at(items.get(slug), slug, served.generation) for slug in slugs], served

    def get_many(self, slugs: list[str]) -> list[StoredLink | None]:
        """The redirect's templated lookup: every candidate slug at once."""
        return self.lookup_many(slugs)[0]


def _link_at(item: dict | None, slug: str, generation: int, now: float | None = None):
    """The link an item gives `generation`, or None (no item, no entry, gone-period over)."""
    if item is None:
        return None
    try:
        value = value_at(item[ENTRIES]["S"], generation)
        link = None if value is None else decode_value(value.encode())
    except (KeyError, TypeError, ValueError):
        raise DynamoUnavailable(f"the item for {slug!r} is not this store's") from None
    if link and link.expires and link.expires + GONE_RETENTION_SECONDS <= (now or time.time()):
        return None
    return link
