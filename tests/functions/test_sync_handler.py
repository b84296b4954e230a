"""functions.sync.handler: S3 events in, atomic applies out, in order, exactly once in effect."""

from __future__ import annotations

import boto3
import pytest

from functions.links.index import InvalidIndex, build_index
from functions.links.model import META_KEY, Link
from functions.links.s3 import S3Location, put_index
from functions.sync import NotPrimaryRegion, handler

from .conftest import LINKS, s3_event

KEY = "index/links.json"


@pytest.fixture
def primary_sync(redis_replicated, s3_bucket, configure):
    primary, replica = redis_replicated
    configure(
        REDIS_URL=primary.url,
        AWS_REGION="eu-west-1",
        PRIMARY_REGION="eu-west-1",
        LINK_INDEX_BUCKET=s3_bucket,
        LINK_INDEX_KEY=KEY,
    )
    return primary, replica, s3_bucket


def publish(bucket: str, links: list[Link], sequencer: str) -> tuple[dict, str]:
    index = build_index(links)
    result = put_index(S3Location(bucket, KEY), index)
    return s3_event(bucket, KEY, result.s3_version_id, sequencer), index.version


def served_version(server) -> str | None:
    version = server.client().hget(META_KEY, "version")
    return version.decode() if version else None


def test_a_put_event_applies_the_index_and_the_replica_follows(primary_sync):
    _primary, replica, bucket = primary_sync
    event, version = publish(bucket, LINKS, "0055AED6DCD90281E5")
    result = handler(event, None)["results"][0]
    assert result["status"] == "applied" and result["version"] == version
    assert result["added"] == len(LINKS)
    replica.wait_in_sync()
    assert served_version(replica) == version
    assert replica.client().get("link:docs") == b"302 - 0 https://docs.example.com/"


def test_redelivery_is_harmless(primary_sync):
    primary, _, bucket = primary_sync
    event, version = publish(bucket, LINKS, "0055AED6DCD90281E5")
    handler(event, None)
    writes = primary.client().info("stats")["total_commands_processed"]
    again = handler(event, None)["results"][0]
    assert again["status"] == "stale"  # the same sequencer: already applied
    assert served_version(primary) == version
    processed = primary.client().info("stats")["total_commands_processed"] - writes
    assert processed < 10  # a read of the metadata, no writes


def test_an_older_event_arriving_late_never_overwrites_a_newer_index(primary_sync):
    primary, _, bucket = primary_sync
    old_event, _old_version = publish(bucket, LINKS, "0055AED6DCD90281E5")
    new_links = [*LINKS, Link("new", "https://example.com/new")]
    new_event, new_version = publish(bucket, new_links, "0055AED6DCD90281F0")
    assert handler(new_event, None)["results"][0]["status"] == "applied"
    late = handler(old_event, None)["results"][0]
    assert late["status"] == "stale"
    assert served_version(primary) == new_version
    assert primary.client().get("link:new")
    # Shorter sequencers compare after left-padding: 'FF' < '0100'.
    short_event, _ = publish(bucket, LINKS, "FF")
    assert handler(short_event, None)["results"][0]["status"] == "stale"


def test_the_event_names_the_object_version_that_is_applied(primary_sync):
    primary, _, bucket = primary_sync
    first_event, first_version = publish(bucket, LINKS, "10")
    publish(bucket, [*LINKS, Link("later", "https://example.com/l")], "20")  # not delivered yet
    assert handler(first_event, None)["results"][0]["version"] == first_version
    assert served_version(primary) == first_version


def test_events_for_other_objects_are_ignored(primary_sync):
    primary, _, bucket = primary_sync
    other_key = s3_event(bucket, "index/other.json", None, "99")
    other_bucket = s3_event("someone-elses-bucket", KEY, None, "99")
    removed = s3_event(bucket, KEY, None, "99", eventName="ObjectRemoved:Delete")
    for event in (other_key, other_bucket, removed, {"Records": [{"nonsense": True}]}):
        assert handler(event, None)["results"][0]["status"] == "ignored"
    assert handler({}, None) == {"results": []}
    assert served_version(primary) is None


def test_url_encoded_keys_are_decoded(primary_sync, configure):
    primary, _, bucket = primary_sync
    configure(
        REDIS_URL=primary.url,
        AWS_REGION="eu-west-1",
        PRIMARY_REGION="eu-west-1",
        LINK_INDEX_BUCKET=bucket,
        LINK_INDEX_KEY="links index/v1.json",
    )
    index = build_index(LINKS)
    result = put_index(S3Location(bucket, "links index/v1.json"), index)
    event = s3_event(bucket, "links+index/v1.json", result.s3_version_id, "01")
    assert handler(event, None)["results"][0]["status"] == "applied"


def test_an_invalid_index_object_is_rejected_and_nothing_is_written(primary_sync):
    primary, _, bucket = primary_sync
    good_event, good_version = publish(bucket, LINKS, "01")
    handler(good_event, None)
    body = build_index(LINKS).to_bytes().replace(b"docs.example.com", b"evil.example.com")
    put = boto3.client("s3").put_object(Bucket=bucket, Key=KEY, Body=body)
    with pytest.raises(InvalidIndex, match="does not match its version"):
        handler(s3_event(bucket, KEY, put["VersionId"], "02"), None)
    assert served_version(primary) == good_version
    assert primary.client().get("link:docs") == b"302 - 0 https://docs.example.com/"


def test_only_the_primary_region_writes(redis_replicated, s3_bucket, configure):
    primary, _replica = redis_replicated
    configure(
        REDIS_URL=primary.url,
        AWS_REGION="us-west-2",
        PRIMARY_REGION="eu-west-1",
        LINK_INDEX_BUCKET=s3_bucket,
        LINK_INDEX_KEY=KEY,
    )
    event, _ = publish(s3_bucket, LINKS, "01")
    with pytest.raises(NotPrimaryRegion):
        handler(event, None)
    assert served_version(primary) is None
