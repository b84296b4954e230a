"""Helpers for feeding the real handlers real event shapes (tests/events/) in tests."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import pytest

from functions import region, sync
from functions.links.index import build_index
from functions.links.model import Link
from functions.links.redis_sync import sync_index
from functions.links.s3 import S3Location, put_index

EVENTS = Path(__file__).resolve().parents[1] / "events"
HTTP_EVENT = json.loads((EVENTS / "http-api-proxy.json").read_text())
S3_PUT_EVENT = json.loads((EVENTS / "s3-put.json").read_text())
FUNCTION_ENV = (
    "REDIS_URL",
    "SERVICE_SECRET_ARN",
    "ORIGIN_VERIFY",
    "LINK_INDEX_BUCKET",
    "LINK_INDEX_KEY",
    "PRIMARY_REGION",
    "AWS_REGION",
    "REDIRECT_CACHE_SECONDS",
    "NOT_FOUND_CACHE_SECONDS",
    "REDIS_CA_FILE",
    "LINK_STORE",
    "LINK_TABLE",
    "LINK_TABLE_REGIONS",
    "LINK_TABLE_ENDPOINTS",
    "LINK_POINTER_REFRESH_S",
    "LINK_SYNC_SETTLE_S",
    "LINK_SYNC_FLIP_TIMEOUT_S",
    "LINK_SYNC_LEASE_S",
    "AWS_ENDPOINT_URL_DYNAMODB",
)


def links_as_of(now: int) -> list[Link]:
    """The test link set; expiring links are relative to `now` (when a test publishes)."""
    return [
        Link("docs", "https://docs.example.com/"),
        Link("gh", "https://github.com/example", status=301),
        Link("search", "https://docs.example.com/search?lang=en#results", 307, forward_query=True),
        Link("plain", "https://example.com/p", forward_query=True),
        Link("old", "https://example.com/old", expires=now - 3600),  # gone, still answered 410
        Link("soon", "https://example.com/soon", 308, expires=now + 600),
        Link("rfc/template", "https://docs.example.com/rfcs/template"),
        Link(
            "jira",
            "https://jira.example.com/browse/{path}",
            owner="platform@example.com",
            description="Jira issues by key: go/jira/ABC-1",
        ),
        Link("jira/cloud", "https://cloud.example.com/issues?key={path}", 307, forward_query=True),
    ]


LINKS = links_as_of(int(time.time()))


def clear_function_caches() -> None:
    region.forget()
    for made_once in (sync.writer, sync.link_table):
        made_once.cache_clear()


@pytest.fixture
def configure(monkeypatch):
    """Set a function container's environment; clients are made afresh from it."""

    def apply(**env: str) -> None:
        for name in FUNCTION_ENV:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        clear_function_caches()

    yield apply
    clear_function_caches()


def http_event(path="/docs", method="GET", headers=None, query="", **fields) -> dict:
    """The SAM-generated HTTP API v2.0 event, for this request."""
    event = copy.deepcopy(HTTP_EVENT)
    for unused in ("body", "pathParameters", "stageVariables", "cookies"):
        event.pop(unused)
    event.update(rawPath=path, rawQueryString=query, isBase64Encoded=False)
    event["headers"] = {"host": "api.example.com", "user-agent": "test", **(headers or {})}
    event["requestContext"]["http"].update(method=method, path=path)
    event.update(fields)
    return event


def s3_event(bucket: str, key: str, version_id: str | None, sequencer: str, **fields) -> dict:
    """The SAM-generated S3 put notification, for this object version."""
    event = copy.deepcopy(S3_PUT_EVENT)
    record = event["Records"][0]
    record["s3"]["bucket"].update(name=bucket, arn=f"arn:aws:s3:::{bucket}")
    record["s3"]["object"].update(key=key, sequencer=sequencer)
    if version_id:
        record["s3"]["object"]["versionId"] = version_id
    record.update(fields)
    return event


@pytest.fixture
def published(redis_replicated, s3_bucket):
    """LINKS synced to a primary (and its replica) and uploaded to a versioned bucket."""
    primary, replica = redis_replicated
    index = build_index(links_as_of(int(time.time())))
    sync_index(primary.client(), index)
    put_index(S3Location(s3_bucket, "index/links.json"), index)
    replica.wait_in_sync()
    return primary, replica, s3_bucket, index


def last_log(capsys) -> dict:
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    return json.loads(lines[-1])


@pytest.fixture
def serving(published, configure):
    """A redirect container in a secondary region, reading its replica."""
    primary, replica, bucket, index = published
    configure(
        REDIS_URL=replica.url,
        AWS_REGION="us-west-2",
        PRIMARY_REGION="eu-west-1",
        LINK_INDEX_BUCKET=bucket,
    )
    return primary, replica, bucket, index
