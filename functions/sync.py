"""`functions.sync.handler`: apply a newly published link index to the region's link store.

Triggered by the S3 notification for the index object in the primary region's
bucket. S3 delivers at least once and in no guaranteed order, so each apply
carries the event's sequencer and the store refuses anything older than what
it holds. Runs only in the primary region: it alone writes.

- `elasticache`: one MULTI/EXEC on the Global Datastore primary (redis_sync);
  secondary members are read-only.
- `dynamodb`: the changed items of the global table, then each region's flip
  once that region holds all of them (dynamo_sync). Another sync holding the
  table's writer lease fails this one with SyncConflict, so Lambda retries
  it. Regions that could not be flipped in time (replication slow, a replica
  unreachable) are named in the log and the run fails with RegionsPending
  once every other region is flipped: Lambda's retry of the same event flips
  them (the same publish is not stale), as does the next publish.
"""

from __future__ import annotations

import json
import os
from functools import cache
from urllib.parse import unquote_plus

from functions import region
from functions.links.index import InvalidIndex
from functions.links.s3 import S3Location, get_index

#: A DynamoDB call of the sync gives up after these (seconds, attempts); the
#: lease and the flip's own timeout bound a whole run.
DYNAMODB_CONNECT_TIMEOUT_S = 3
DYNAMODB_READ_TIMEOUT_S = 30
DYNAMODB_ATTEMPTS = 3


class NotPrimaryRegion(RuntimeError):
    """Only the primary region writes the link store."""


class RegionsPending(RuntimeError):
    """The index is written, but some regions could not be flipped to it yet."""


@cache
def writer():
    """The Global Datastore primary, through redis-py (store elasticache)."""
    import redis  # noqa: PLC0415 - only the store in use

    settings = region.settings()
    options = {"socket_timeout": 60, "socket_connect_timeout": 5}
    if settings.redis_password:
        options["password"] = settings.redis_password
    if os.environ.get("REDIS_CA_FILE"):
        options["ssl_ca_certs"] = os.environ["REDIS_CA_FILE"]
    return redis.Redis.from_url(settings.redis_url, **options)


@cache
def link_table():
    """The global table (store dynamodb): the primary replica first, then every other.

    LINK_TABLE_REGIONS lists the stack's regions, the primary first. Each
    replica is reached at its region's endpoint; LINK_TABLE_ENDPOINTS
    (`region=url,...`) overrides them (the local stack's per-region DynamoDB).
    """
    import boto3  # noqa: PLC0415 - only the store in use
    from botocore.config import Config  # noqa: PLC0415

    from functions.links.dynamo_sync import LinkTable, Replica  # noqa: PLC0415

    env, settings = os.environ, region.settings()
    regions = [r.strip() for r in env.get("LINK_TABLE_REGIONS", "").split(",") if r.strip()]
    if not regions or regions[0] != settings.primary_region:
        raise region.ConfigError(
            f"LINK_TABLE_REGIONS must list the stack's regions, the primary "
            f"({settings.primary_region}) first, not {env.get('LINK_TABLE_REGIONS', '')!r}"
        )
    endpoints = _endpoints(env.get("LINK_TABLE_ENDPOINTS", ""))
    config = Config(
        connect_timeout=DYNAMODB_CONNECT_TIMEOUT_S,
        read_timeout=DYNAMODB_READ_TIMEOUT_S,
        retries={"max_attempts": DYNAMODB_ATTEMPTS, "mode": "standard"},
        max_pool_connections=16,  # the writes and read-backs run 8 batches at once
    )
    replicas = tuple(
        Replica(
            name,
            boto3.client(
                "dynamodb", region_name=name, endpoint_url=endpoints.get(name), config=config
            ),
        )
        for name in regions
    )
    return LinkTable(settings.link_table, replicas[0], replicas)


def _endpoints(raw: str) -> dict[str, str]:
    endpoints = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        name, sep, url = part.partition("=")
        if not sep or not name or not url:
            raise region.ConfigError(f"LINK_TABLE_ENDPOINTS: {part!r} is not region=url")
        endpoints[name.strip()] = url.strip()
    return endpoints


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
    if settings.store == region.DYNAMODB:
        result = _sync_dynamodb(index, sequencer, version_id)
    else:
        result = _sync_redis(index, sequencer)
    pending = result.get("pending_regions")
    level = "warning" if pending else "info"
    _log(result["status"], level=level, s3_version=version_id, sequencer=sequencer, **result)
    if pending:
        unreachable = "".join(f"; {r}: {e}" for r, e in result["unreachable"].items())
        raise RegionsPending(
            f"version {index.version} is written but not yet served in {', '.join(pending)} "
            f"(not all of its items there within the flip timeout{unreachable}); "
            "a retry of this event flips them"
        )
    return result


def _sync_redis(index, sequencer: str | None) -> dict:
    from functions.links.redis_sync import sync_index  # noqa: PLC0415 - only the store in use

    report = sync_index(writer(), index, sequencer=sequencer)
    plan = report.plan
    return {
        "status": "stale" if plan.stale else "applied" if report.applied else "unchanged",
        "version": index.version,
        "previous_version": plan.previous_version,
        "added": len(plan.added),
        "changed": len(plan.changed),
        "removed": len(plan.removed),
        "seconds": round(report.seconds, 3),
    }


def _sync_dynamodb(index, sequencer: str | None, version_id: str | None) -> dict:
    from functions.links.dynamo_sync import SyncConflict, sync_table  # noqa: PLC0415

    try:
        report = sync_table(link_table(), index, sequencer=sequencer, **_dynamodb_timings())
    except SyncConflict as exc:
        _log("conflict", level="error", s3_version=version_id, sequencer=sequencer, reason=str(exc))
        raise
    plan = report.plan
    if plan.stale:
        status = "stale"
    elif plan.generation > plan.previous_generation:
        status = "applied"
    else:
        status = "unchanged"
    return {
        "status": status,
        "version": index.version,
        "previous_version": plan.previous_version,
        "generation": plan.generation,
        "added": len(plan.added),
        "changed": len(plan.changed),
        "removed": len(plan.removed),
        "written": plan.written_items,
        "pruned": report.pruned,
        "pending_regions": list(report.pending_regions) if not plan.stale else [],
        "unreachable": report.unreachable,
        "seconds": round(report.seconds, 3),
    }


def _dynamodb_timings(env=os.environ) -> dict[str, float]:
    """The sync's waits (dynamo_sync's defaults unless set): the local stack scales them
    with its simulated delays. LINK_POINTER_REFRESH_S is the readers' setting too."""
    names = {
        "settle_s": "LINK_SYNC_SETTLE_S",
        "flip_timeout": "LINK_SYNC_FLIP_TIMEOUT_S",
        "lease_seconds": "LINK_SYNC_LEASE_S",
    }
    timings = {option: region.seconds(env, name) for option, name in names.items()}
    timings["refresh_s"] = region.settings().pointer_refresh_s
    return {option: value for option, value in timings.items() if value is not None}


def _log(message: str, level: str = "info", **fields) -> None:
    print(json.dumps({"level": level, "function": "sync", "message": message, **fields}))
