"""The link index in the region's S3 bucket, for when Redis cannot answer.

Loaded once per container on first need and kept in memory; while it keeps
being needed it is re-checked every REFRESH_S with a conditional GET, so a long
Redis outage still serves newly published links. After a failed load, S3 is
left alone for RETRY_AFTER_S so a region with neither Redis nor S3 answers 503
quickly instead of waiting on S3 for every request.
"""

from __future__ import annotations

import time

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from functions.links.index import Index, InvalidIndex
from functions.links.model import Link, StoredLink, stored_link

REFRESH_S = 60.0
RETRY_AFTER_S = 5.0
S3_CONFIG = Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1})


class FallbackUnavailable(Exception):
    """The index could not be loaded from S3."""


class IndexFallback:
    def __init__(self, bucket: str, key: str):
        self.bucket, self.key = bucket, key
        self.s3 = boto3.client("s3", config=S3_CONFIG)
        self.links: dict[str, Link] | None = None
        self.version: str | None = None
        self.count: int | None = None
        self._etag: str | None = None
        self._checked_at = 0.0
        self._failed_at = -RETRY_AFTER_S

    def lookup(self, slug: str) -> StoredLink | None:
        link = self._current().get(slug)
        return None if link is None else stored_link(link)

    def lookup_many(self, slugs: list[str]) -> list[StoredLink | None]:
        return [self.lookup(slug) for slug in slugs]

    def details(self) -> tuple[str, dict[str, Link]]:
        """The published version and every link with all its fields (owner, description)."""
        links = self._current()
        return self.version, links

    def ensure_loaded(self) -> None:
        self._current()

    def _current(self) -> dict[str, Link]:
        now = time.monotonic()
        if self.links is not None and now - self._checked_at < REFRESH_S:
            return self.links
        if self.links is None and now - self._failed_at < RETRY_AFTER_S:
            raise FallbackUnavailable("the S3 index failed to load moments ago")
        try:
            self._load()
        except (BotoCoreError, ClientError, InvalidIndex) as exc:
            self._failed_at = now
            if self.links is None:
                raise FallbackUnavailable(f"s3://{self.bucket}/{self.key}: {exc}") from None
        self._checked_at = now
        return self.links

    def _load(self) -> None:
        extra = {"IfNoneMatch": self._etag} if self._etag else {}
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=self.key, **extra)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("304", "NotModified"):
                return
            raise
        index = Index.from_bytes(response["Body"].read())
        self.links = {link.slug: link for link in index.links}
        self.version, self.count, self._etag = index.version, index.count, response.get("ETag")
