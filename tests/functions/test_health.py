"""functions.health.handler: what Cloudflare's monitors see in each situation."""

from __future__ import annotations

import json

from functions.health import handler

from .conftest import http_event


def health() -> tuple[int, dict, dict]:
    response = handler(http_event("/healthz"), None)
    return response["statusCode"], json.loads(response["body"]), response["headers"]


def test_a_replica_serving_the_index_is_ok(published, configure):
    _, replica, bucket, index = published
    configure(REDIS_URL=replica.url, AWS_REGION="ap-southeast-1", LINK_INDEX_BUCKET=bucket)
    status, body, headers = health()
    assert status == 200 and headers["Cache-Control"] == "no-store"
    assert body == {
        "region": "ap-southeast-1",
        "status": "ok",
        "version": index.version,
        "count": index.count,
        "source": "redis",
        "redis": {"role": "replica", "link": "up", "error": None},
    }


def test_the_primary_reports_its_role(published, configure):
    primary, _, bucket, _index = published
    configure(REDIS_URL=primary.url, AWS_REGION="eu-west-1", LINK_INDEX_BUCKET=bucket)
    status, body, _ = health()
    assert status == 200 and body["redis"] == {"role": "master", "link": None, "error": None}


def test_a_replica_cut_off_from_its_primary_still_serves_but_says_so(published, configure):
    primary, replica, bucket, index = published
    configure(REDIS_URL=replica.url, LINK_INDEX_BUCKET=bucket)
    primary.kill()
    status, body, _ = health()
    assert status == 200 and body["status"] == "ok" and body["version"] == index.version
    assert body["redis"]["link"] == "down"


def test_redis_down_with_the_s3_index_is_degraded(published, configure):
    _, replica, bucket, index = published
    configure(REDIS_URL=replica.url, LINK_INDEX_BUCKET=bucket)
    replica.kill()
    status, body, _ = health()
    assert status == 200
    assert (body["status"], body["source"], body["version"], body["count"]) == (
        "degraded",
        "s3-fallback",
        index.version,
        index.count,
    )
    assert "cannot connect" in body["redis"]["error"]


def test_neither_redis_nor_s3_is_down(published, configure):
    _, replica, _, _ = published
    configure(REDIS_URL=replica.url, LINK_INDEX_BUCKET="no-such-bucket-anywhere")
    replica.kill()
    status, body, _ = health()
    assert status == 503 and body["status"] == "down" and body["version"] is None
    assert "no-such-bucket-anywhere" in body["fallback_error"]


def test_an_empty_redis_keeps_traffic_away(redis_primary, s3_bucket, configure):
    configure(REDIS_URL=redis_primary.url, LINK_INDEX_BUCKET=s3_bucket)
    status, body, _ = health()
    assert status == 503 and body["redis"]["error"] == "Redis holds no link index yet"


def test_without_cloudfront_s_header_a_probe_learns_the_status_alone(published, configure):
    """Route 53 health checkers send no headers: the same status code, no versions or roles."""
    _, replica, bucket, index = published
    configure(REDIS_URL=replica.url, LINK_INDEX_BUCKET=bucket, ORIGIN_VERIFY="from-cloudfront")
    probe = handler(http_event("/healthz"), None)
    assert (probe["statusCode"], json.loads(probe["body"])) == (200, {"status": "ok"})
    forged = handler(http_event("/healthz", headers={"x-origin-verify": "guess"}), None)
    assert json.loads(forged["body"]) == {"status": "ok"}
    ok = handler(http_event("/healthz", headers={"x-origin-verify": "from-cloudfront"}), None)
    assert ok["statusCode"] == 200 and json.loads(ok["body"])["version"] == index.version
    replica.kill()
    configure(
        REDIS_URL=replica.url, LINK_INDEX_BUCKET="no-such-bucket", ORIGIN_VERIFY="from-cloudfront"
    )
    down = handler(http_event("/healthz"), None)
    assert (down["statusCode"], json.loads(down["body"])) == (503, {"status": "down"})
