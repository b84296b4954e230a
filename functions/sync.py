"""`functions.sync.handler`: apply a newly published link index to the Global Datastore.

Triggered by the S3 notification for the index object in the primary region's
bucket. S3 delivers at least once and in no guaranteed order, so each apply
carries the event's sequencer and Redis refuses anything not newer than what
it holds (see redis_sync). Runs only in the primary region: secondary members
of a Global Datastore are read-only.
"""

from __future__ import annotations

import json
import os
from functools import cache
from urllib.parse import unquote_plus

import redis

from functions import region
from functions.links.index import InvalidIndex
from functions.links.redis_sync import sync_index
from functions.links.s3 import S3Location, get_index


class NotPrimaryRegion(RuntimeError):
    """Only the primary region may write to the Global Datastore."""


@cache
def writer() -> redis.Redis:
    settings = region.settings()
    options = {"socket_timeout": 60, "socket_connect_timeout": 5}
    if settings.redis_password:
        options["password"] = settings.redis_password
    if os.environ.get("REDIS_CA_FILE"):
        options["ssl_ca_certs"] = os.environ["REDIS_CA_FILE"]
    return redis.Redis.from_url(settings.redis_url, **options)


def handler(event, context=None) -> dict:
    settings = region.settings()
    if settings.region != settings.primary_region:
        _log("refused", reason=f"sync runs in {settings.primary_region}, not {settings.region}")
        raise NotPrimaryRegion(
            f"this is {settings.region}; the primary is {settings.primary_region}"
        )
    records = event.get("Records") if isinstance(event, dict) else None
    results = [_apply(record, settings) for record in records or []]
    return {"results": results}


def _apply(record, settings: region.Settings) -> dict:
    try:
        s3 = record["s3"]
        bucket, key = s3["bucket"]["name"], unquote_plus(s3["object"]["key"])
        event_name = record["eventName"]
    except (KeyError, TypeError):
        _log("ignored", reason="not an S3 event record")
        return {"status": "ignored", "reason": "not an S3 event record"}
    if not event_name.startswith("ObjectCreated:") or (bucket, key) != (
        settings.index_bucket,
        settings.index_key,
    ):
        _log("ignored", bucket=bucket, key=key, event=event_name)
        return {"status": "ignored", "bucket": bucket, "key": key}
    version_id = s3["object"].get("versionId")
    sequencer = s3["object"].get("sequencer")
    try:
        index = get_index(S3Location(bucket, key), version_id)
    except InvalidIndex as exc:
        _log(
            "rejected",
            level="error",
            bucket=bucket,
            key=key,
            s3_version=version_id,
            reason=str(exc),
        )
        raise
    report = sync_index(writer(), index, sequencer=sequencer)
    plan = report.plan
    status = "stale" if plan.stale else "applied" if report.applied else "unchanged"
    result = {
        "status": status,
        "version": index.version,
        "previous_version": plan.previous_version,
        "added": len(plan.added),
        "changed": len(plan.changed),
        "removed": len(plan.removed),
        "seconds": round(report.seconds, 3),
    }
    _log(status, s3_version=version_id, sequencer=sequencer, **result)
    return result


def _log(message: str, level: str = "info", **fields) -> None:
    print(json.dumps({"level": level, "function": "sync", "message": message, **fields}))
