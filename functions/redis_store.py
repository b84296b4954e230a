"""The redirect and health functions' view of the region's Redis reader.

One GET of `link:<slug>` answers an exact hit; a templated hit costs one MGET
more (see functions.redirect).
"""

from __future__ import annotations

from functions.lean_redis import LeanRedis
from functions.links.model import StoredLink, decode_value, link_key
from functions.store import FailureGuard


class GuardedRedis(FailureGuard):
    """The region's Redis reader, skipped for a moment after it fails (see FailureGuard)."""

    def __init__(self, client: LeanRedis):
        super().__init__("Redis")
        self.client = client

    def execute(self, *args: str):
        return self.call(self.client.execute, *args)


class RedisLinks:
    """Links as the region's Redis reader serves them."""

    source = "redis"

    def __init__(self, redis: GuardedRedis):
        self.redis = redis

    def get(self, slug: str) -> StoredLink | None:
        value = self.redis.execute("GET", link_key(slug))
        return decode_value(value) if value else None

    def get_many(self, slugs: list[str]) -> list[StoredLink | None]:
        values = self.redis.execute("MGET", *(link_key(slug) for slug in slugs))
        return [decode_value(value) if value else None for value in values]
