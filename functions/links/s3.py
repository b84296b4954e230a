"""The index object in S3: written with its version, read back verified.

boto3 is imported here and nowhere on the redirect hot path; endpoints and
credentials come from boto3's own settings (AWS_ENDPOINT_URL_S3 points it at a
local S3 in tests and in the local stack).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import boto3

from .index import Index

VERSION_METADATA = "index-version"
COUNT_METADATA = "link-count"


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


def put_index(location: S3Location, index: Index, client=None) -> PutResult:
    """Upload `index` as a new object version, even when the content is unchanged.

    Every upload fires the bucket's notification, so re-running a publish
    whose sync failed makes the sync run again (a no-op when Redis already
    serves the version); S3 keeps the identical versions cheaply.
    """
    client = client or s3_client()
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
        Metadata={VERSION_METADATA: index.version, COUNT_METADATA: str(index.count)},
        ChecksumAlgorithm="SHA256",
    )
    return PutResult(response.get("VersionId"), previous, versioned)


def get_index(location: S3Location, s3_version_id: str | None = None, client=None) -> Index:
    """The index at `location` (a specific S3 object version if given), verified."""
    extra = {"VersionId": s3_version_id} if s3_version_id else {}
    response = (client or s3_client()).get_object(Bucket=location.bucket, Key=location.key, **extra)
    return Index.from_bytes(response["Body"].read())
