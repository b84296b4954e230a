"""`functions.health.handler`: may this region receive traffic? For Cloudflare's monitors
and Route 53's health checks.

200 `ok`: the region's store (Redis, or its replica of the DynamoDB link
table) answers and holds a link index. 200 `degraded`: the store cannot
answer but the S3 index can (redirects still work, from the fallback). 503
`down`: neither. The body says which index version the region serves, so
publishing can wait until every region has the new one. Without the
origin-verify header (a Route 53 health checker cannot send one) the answer is
the same status code with the status word alone.
"""

from __future__ import annotations

import json
import time

from functions import region
from functions.links.model import META_KEY
from functions.origin import from_cloudfront
from functions.store import StoreUnavailable
from functions.telemetry import log_request


def handler(event, context=None) -> dict:
    started = time.perf_counter()
    settings = region.settings()
    report = check(settings)
    status_code = 503 if report["status"] == "down" else 200
    # A Route 53 health checker cannot send headers: it learns the status, nothing else.
    anonymous = settings.origin_verify and not from_cloudfront(event, settings.origin_verify)
    response = {
        "statusCode": status_code,
        "headers": {"Content-Type": "application/json", "Cache-Control": "no-store"},
        "body": json.dumps({"status": report["status"]} if anonymous else report),
    }
    log_request(
        "health",
        settings.region,
        event,
        status=status_code,
        slug=None,
        source=report["source"] or "none",
        started=started,
    )
    return response


def check(settings: region.Settings) -> dict:
    """The region's report: `source` is redis, dynamodb or s3-fallback, and the store's
    own details are under `redis` or `dynamodb`."""
    report = {
        "region": settings.region,
        "status": "down",
        "version": None,
        "count": None,
        "source": None,
    }
    if settings.store == region.DYNAMODB:
        answered = _check_dynamodb(report, settings)
    else:
        answered = _check_redis(report)
    if answered is not None:
        return report
    fallback = region.fallback()
    if fallback is not None:
        from functions.fallback import FallbackUnavailable  # noqa: PLC0415 - off the hot path

        try:
            fallback.ensure_loaded()
            report.update(
                status="degraded",
                version=fallback.version,
                count=fallback.count,
                source="s3-fallback",
            )
        except FallbackUnavailable as exc:
            report["fallback_error"] = str(exc)
    return report


def _check_redis(report: dict) -> bool | None:
    """True: Redis serves an index; False: it answers but holds none; None: it cannot answer."""
    from functions.lean_redis import RedisReplyError  # noqa: PLC0415 - only the store in use

    report["redis"] = details = {"role": None, "link": None, "error": None}
    redis = region.redis()
    try:
        meta = _pairs(redis.execute("HGETALL", META_KEY))
        replication = _info(redis.execute("INFO", "replication"))
    except (StoreUnavailable, RedisReplyError) as exc:
        details["error"] = str(exc)
        return None
    replica = replication.get("role") == "slave"
    details.update(
        role="replica" if replica else replication.get("role"),
        link=replication.get("master_link_status") if replica else None,
    )
    if not meta.get("version"):
        # Every redirect here would be a 404: keep traffic away until a publish.
        details["error"] = "Redis holds no link index yet"
        return False
    report.update(
        status="ok", version=meta["version"], source="redis", count=int(meta.get("count", 0))
    )
    return True


def _check_dynamodb(report: dict, settings: region.Settings) -> bool | None:
    """As _check_redis, from the region's pointer item (the generation its redirects follow)."""
    from functions.dynamo_store import NoIndexYet  # noqa: PLC0415 - only the store in use

    report["dynamodb"] = details = {"table": settings.link_table, "generation": None, "error": None}
    try:
        served = region.dynamodb().served(fresh=True)  # the table answers now, or not
    except NoIndexYet as exc:
        # Nothing published to this region yet: keep traffic away until a publish.
        details["error"] = str(exc)
        return False
    except (StoreUnavailable, ValueError) as exc:  # ValueError: no credentials to sign with
        details["error"] = str(exc)
        return None
    details["generation"] = served.generation
    report.update(status="ok", version=served.version, count=served.count, source="dynamodb")
    return True


def _pairs(flat) -> dict[str, str]:
    items = [item.decode() for item in flat or []]
    return dict(zip(items[::2], items[1::2], strict=True))


def _info(raw) -> dict[str, str]:
    lines = (raw or b"").decode().splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line and not line.startswith("#"))
