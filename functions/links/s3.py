"""The index object in S3: written with its version, read back verified.

boto3 is imported here and nowhere on the redirect hot path; endpoints and
credentials come from boto3's own settings (AWS_ENDPOINT_URL_S3 points it at a
local S3 in tests and in the local stack).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache

import boto3

from .index import Index
from .model import DIRECTORY_JSON, DIRECTORY_PAGE

VERSION_METADATA = "index-version"
COUNT_METADATA = "link-count"
#: The git commit whose links/ the index was built from (GITHUB_SHA in CI).
COMMIT_METADATA = "commit"
#: On a rollback: the index version it replaced.
ROLLBACK_METADATA = "rollback-from"
#: CloudFront keeps the directory this long at most (it honours the object's Cache-Control).
DIRECTORY_CACHE_CONTROL = "public, max-age=60"


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        scheme, _, rest = uri.partition("://")
        bucket, _, key = rest.partition("/")
        if scheme != "s3" or not bucket or not key or key.endswith("/"):
            raise ValueError(f"expected s3://bucket/key, got {uri!r}")
        return cls(bucket, key)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class PutResult:
    s3_version_id: str | None
    previous_version: str | None
    """The link-index version the object held before (None: it did not exist)."""
    bucket_versioned: bool


@cache
def s3_client():
    return boto3.client("s3")


def put_index(
    location: S3Location,
    index: Index,
    client=None,
    *,
    commit: str | None = None,
    rollback_from: str | None = None,
) -> PutResult:
    """Upload `index` as a new object version, even when the content is unchanged.

    Every upload fires the bucket's notification, so re-running a publish
    whose sync failed makes the sync run again (a no-op when Redis already
    serves the version); S3 keeps the identical versions cheaply. The
    metadata records the commit it was built from (`commit`, default
    $GITHUB_SHA) for `history`.
    """
    client = client or s3_client()
    metadata = {VERSION_METADATA: index.version, COUNT_METADATA: str(index.count)}
    if commit := commit or os.environ.get("GITHUB_SHA"):
        metadata[COMMIT_METADATA] = commit
    if rollback_from:
        metadata[ROLLBACK_METADATA] = rollback_from
    versioned = client.get_bucket_versioning(Bucket=location.bucket).get("Status") == "Enabled"
    try:
        head = client.head_object(Bucket=location.bucket, Key=location.key)
        previous = head.get("Metadata", {}).get(VERSION_METADATA)
    except client.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchKey"):
            raise
        previous = None
    response = client.put_object(
        Bucket=location.bucket,
        Key=location.key,
        Body=index.to_bytes(),
        ContentType="application/json",
        Metadata=metadata,
        ChecksumAlgorithm="SHA256",
    )
    return PutResult(response.get("VersionId"), previous, versioned)


def put_directory(index: Index, buckets: Iterable[str], client=None) -> None:
    """Write `/_links` and `/_links.json` for `index` into every static-site bucket."""
    from .pages import directory_json, directory_page  # noqa: PLC0415 - only publishing renders

    client = client or s3_client()
    files = (
        (DIRECTORY_PAGE, directory_page(index), "text/html; charset=utf-8"),
        (DIRECTORY_JSON, directory_json(index), "application/json"),
    )
    for bucket in buckets:
        for key, body, content_type in files:
            client.put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                CacheControl=DIRECTORY_CACHE_CONTROL,
                Metadata={VERSION_METADATA: index.version},
                ChecksumAlgorithm="SHA256",
            )


def get_index(location: S3Location, s3_version_id: str | None = None, client=None) -> Index:
    """The index at `location` (a specific S3 object version if given), verified."""
    extra = {"VersionId": s3_version_id} if s3_version_id else {}
    response = (client or s3_client()).get_object(Bucket=location.bucket, Key=location.key, **extra)
    return Index.from_bytes(response["Body"].read())


@dataclass(frozen=True)
class Published:
    """One upload of the index object, as `history` lists it."""

    s3_version_id: str
    time: datetime
    version: str | None
    count: int | None
    commit: str | None
    rollback_from: str | None
    current: bool


def history(location: S3Location, limit: int = 20, client=None) -> list[Published]:
    """The latest `limit` uploads of the index object, newest first."""
    return list(itertools.islice(published_versions(location, client), limit))


def published_versions(location: S3Location, client=None) -> Iterator[Published]:
    """Every upload of the index object, newest first (one HEAD each, as they are read)."""
    client = client or s3_client()
    versions = []
    paginator = client.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=location.bucket, Prefix=location.key):
        versions += [v for v in page.get("Versions", []) if v["Key"] == location.key]
    versions.sort(key=lambda v: v["LastModified"], reverse=True)
    for version in versions:
        head = client.head_object(
            Bucket=location.bucket, Key=location.key, VersionId=version["VersionId"]
        )
        metadata = head.get("Metadata", {})
        count = metadata.get(COUNT_METADATA)
        yield Published(
            s3_version_id=version["VersionId"],
            time=version["LastModified"],
            version=metadata.get(VERSION_METADATA),
            count=int(count) if count and count.isdigit() else None,
            commit=metadata.get(COMMIT_METADATA),
            rollback_from=metadata.get(ROLLBACK_METADATA),
            current=version["IsLatest"],
        )
