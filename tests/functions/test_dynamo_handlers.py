"""The handlers on the DynamoDB store (LINK_STORE=dynamodb): real events, one moto DynamoDB per
region with replication between them, the index in moto S3."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import boto3
import pytest

from functions import health, redirect, region, sync
from functions.links.dynamo_items import KEY, META_KEY
from functions.links.dynamo_sync import SyncConflict, sync_table
from functions.links.index import build_index
from functions.links.model import Link
from functions.links.s3 import S3Location, put_index
from functions.region import ConfigError, Settings
from functions.sync import RegionsPending
from local.delay_proxy import DelayProxy
from local.servers import free_port
from tests.conftest import REPO
from tests.support.dynamo import GlobalTable

from .conftest import http_event, last_log, links_as_of, s3_event

REGIONS = ("eu-west-1", "us-west-2", "ap-southeast-1")
PRIMARY = REGIONS[0]
INDEX_KEY = "index/links.json"
FAST = {"settle_s": 0.05, "refresh_s": 0.05, "flip_timeout": 10}
#: What the sync function reads for the same waits (the readers re-read their pointer as often).
FAST_ENV = {
    "LINK_SYNC_SETTLE_S": "0.05",
    "LINK_POINTER_REFRESH_S": "0.05",
    "LINK_SYNC_FLIP_TIMEOUT_S": "10",
}


def new_bucket() -> str:
    name = f"links-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": PRIMARY})
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


@pytest.fixture(scope="module")
def published(dynamodb_regions, s3_server) -> Iterator[tuple[GlobalTable, str, object]]:
    """The test links in a global table (every region flipped) and in a versioned bucket."""
    index = build_index(links_as_of(int(time.time())))
    bucket = new_bucket()
    put_index(S3Location(bucket, INDEX_KEY), index)
    with GlobalTable(dynamodb_regions) as table:
        report = sync_table(table.table, index, **FAST)
        assert report.pending_regions == ()
        table.replication.wait_idle()
        yield table, bucket, index


def reader_env(table: GlobalTable, where: str, **extra: str) -> dict[str, str]:
    """A redirect or health container in `where`, as the program configures it."""
    return {
        "LINK_STORE": "dynamodb",
        "LINK_TABLE": table.name,
        "AWS_REGION": where,
        "PRIMARY_REGION": PRIMARY,
        "AWS_ENDPOINT_URL_DYNAMODB": table.servers[where].endpoint,
        "LINK_INDEX_BUCKET": extra.pop("bucket", ""),
        **extra,
    }


@pytest.fixture
def serving(published, configure):
    """A container in us-west-2 reading its own replica."""
    table, bucket, index = published
    configure(**reader_env(table, "us-west-2", bucket=bucket))
    return table, bucket, index


def get(path: str, **kwargs) -> dict:
    return redirect.handler(http_event(path, **kwargs), None)


class Calls:
    """The operations the region's lean DynamoDB client sends (a spy on its own method)."""

    def __init__(self, monkeypatch):
        self.operations: list[str] = []
        client = region.dynamodb().client
        send = client.call

        def counted(operation: str, body: bytes) -> dict:
            self.operations.append(operation)
            return send(operation, body)

        monkeypatch.setattr(client, "call", counted)

    def during(self, action) -> list[str]:
        self.operations.clear()
        action()
        return list(self.operations)


def test_an_exact_hit_is_one_get_item_and_a_templated_hit_one_batch_more(
    serving, monkeypatch, capsys
):
    _, _, index = serving
    assert get("/docs")["statusCode"] == 302  # connected, pointer read
    calls = Calls(monkeypatch)
    response = None

    def docs():
        nonlocal response
        response = get("/docs")

    assert calls.during(docs) == ["GetItem"]
    assert response["headers"]["Location"] == "https://docs.example.com/"
    assert last_log(capsys)["source"] == "dynamodb"
    assert calls.during(lambda: get("/jira")) == ["GetItem"]
    assert calls.during(lambda: get("/jira/cloud/XYZ-9/x/y")) == ["GetItem", "BatchGetItem"]
    # A path that cannot be a slug as a whole (a space) skips the exact read.
    assert calls.during(lambda: get("/jira/a b")) == ["BatchGetItem"]
    assert calls.during(lambda: get("/_links/x")) == []
    time.sleep(region.dynamodb().refresh_s)
    assert calls.during(lambda: get("/gh")) == ["GetItem", "GetItem"]  # the pointer, once a second
    assert region.dynamodb().served().version == index.version


def test_redirects_answer_like_the_redis_path(serving, capsys):
    answers = {
        "/docs": (302, "https://docs.example.com/"),
        "/GH": (301, "https://github.com/example"),
        "/jira/ABC-1": (302, "https://jira.example.com/browse/ABC-1"),
        "/jira/Cloud/XYZ-9": (307, "https://cloud.example.com/issues?key=XYZ-9"),
        "/jira/cloud": (307, "https://cloud.example.com/issues?key="),
    }
    for path, (status, location) in answers.items():
        response = get(path)
        assert (response["statusCode"], response["headers"]["Location"]) == (status, location)
        assert last_log(capsys)["source"] == "dynamodb"
    search = get("/search", query="q=a%20b")
    assert (
        search["headers"]["Location"] == "https://docs.example.com/search?lang=en&q=a%20b#results"
    )
    soon = get("/soon")
    assert soon["statusCode"] == 308 and "max-age=" in soon["headers"]["Cache-Control"]
    assert get("/old")["statusCode"] == 410  # expired an hour ago: gone, as with Redis
    assert get("/nope")["statusCode"] == 404
    assert get("/docs/x")["statusCode"] == 404  # not a template: not a prefix
    assert get("/gh+")["statusCode"] == 200  # details: from the S3 index, unchanged


@pytest.mark.parametrize(
    ("event", "status"),
    [
        ("not an event", 400),
        ({"rawPath": "/docs"}, 400),
        (http_event("/docs", method="POST"), 405),
        (http_event("/" + "a" * 5000), 404),
        (http_event("/a/../docs"), 404),
        (http_event("/%00"), 404),
        (http_event("/jira/" + "x/" * 3000), 404),
    ],
)
def test_bad_requests_get_a_4xx_never_a_500(serving, event, status):
    assert redirect.handler(event, None)["statusCode"] == status


@pytest.fixture
def cuttable(published):
    """us-west-2's DynamoDB behind a link that can be cut (connections refused) and restored."""
    table, _, _ = published
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def run(coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

    proxy = run(DelayProxy(table.servers["us-west-2"].port, 0).start())
    yield proxy, run
    run(proxy.stop())
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def test_dynamodb_unreachable_serves_from_s3_then_recovers_by_itself(
    published, cuttable, configure, capsys
):
    table, bucket, _ = published
    proxy, run = cuttable
    endpoint = f"http://127.0.0.1:{proxy.port}"
    configure(**reader_env(table, "us-west-2", bucket=bucket, AWS_ENDPOINT_URL_DYNAMODB=endpoint))
    assert get("/docs")["statusCode"] == 302
    run(proxy.cut())
    time.sleep(region.dynamodb().refresh_s)  # the pointer is due to be read again
    gh = get("/gh")
    assert (gh["statusCode"], gh["headers"]["Location"]) == (301, "https://github.com/example")
    assert last_log(capsys)["source"] == "s3-fallback"
    assert get("/jira/ABC-1")["headers"]["Location"] == "https://jira.example.com/browse/ABC-1"
    assert get("/old")["statusCode"] == 410 and get("/nope")["statusCode"] == 404
    body = json.loads(health.handler(http_event("/healthz"), None)["body"])
    assert (body["status"], body["source"]) == ("degraded", "s3-fallback")
    assert "DynamoDB failed recently" in body["dynamodb"]["error"]

    run(proxy.restore())
    time.sleep(region.dynamodb().guard.retry_after_s)
    assert get("/docs")["statusCode"] == 302
    assert last_log(capsys)["source"] == "dynamodb"


def test_neither_dynamodb_nor_s3_answers_503(published, configure):
    table, _, _ = published
    closed = f"http://127.0.0.1:{free_port()}"
    configure(
        **reader_env(
            table, "us-west-2", bucket="no-such-bucket-anywhere", AWS_ENDPOINT_URL_DYNAMODB=closed
        )
    )
    status = health.handler(http_event("/healthz"), None)
    body = json.loads(status["body"])
    assert status["statusCode"] == 503 and body["status"] == "down"
    assert "no-such-bucket-anywhere" in body["fallback_error"]
    assert "Connection refused" in body["dynamodb"]["error"]
    response = get("/docs")
    assert response["statusCode"] == 503 and response["headers"]["Retry-After"]


def test_health_reports_the_generation_the_region_serves(published, configure):
    table, bucket, index = published
    for where in REGIONS:
        configure(**reader_env(table, where, bucket=bucket))
        response = health.handler(http_event("/healthz"), None)
        assert response["statusCode"] == 200
        assert json.loads(response["body"]) == {
            "region": where,
            "status": "ok",
            "version": index.version,
            "count": index.count,
            "source": "dynamodb",
            "dynamodb": {"table": table.name, "generation": 1, "error": None},
        }
    configure(**reader_env(table, "us-west-2", bucket=bucket, ORIGIN_VERIFY="from-cloudfront"))
    probe = health.handler(http_event("/healthz"), None)  # a Route 53 checker: no header
    assert (probe["statusCode"], json.loads(probe["body"])) == (200, {"status": "ok"})


def test_a_table_with_nothing_published_keeps_traffic_away(dynamodb_regions, configure):
    with GlobalTable(dynamodb_regions) as table:
        configure(**reader_env(table, "us-west-2"))
        response = health.handler(http_event("/healthz"), None)
        body = json.loads(response["body"])
        assert response["statusCode"] == 503
        assert body["dynamodb"]["error"] == "this region holds no link index yet"


def test_a_cold_redirect_loads_only_its_own_store_s_client(published, s3_server):
    table, bucket, _ = published
    probe = (
        "import sys, json; from functions.redirect import handler; "
        f"event = json.loads({json.dumps(json.dumps(http_event('/docs')))}); "
        "status = handler(event, None)['statusCode']; "
        "print(json.dumps([status, sorted(m for m in ('boto3', 'botocore', 'redis', 'hiredis', "
        "'functions.lean_redis', 'functions.lean_dynamo', 'yaml') if m in sys.modules)]))"
    )
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(REPO),
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        **reader_env(table, "us-west-2", bucket=bucket),
    }
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    assert json.loads(result.stdout.splitlines()[-1]) == [302, ["functions.lean_dynamo"]]


def test_the_store_setting_is_checked():
    with pytest.raises(ConfigError, match="LINK_STORE must be one of elasticache, dynamodb"):
        Settings.from_env({"LINK_STORE": "memcached", "REDIS_URL": "redis://x"})
    with pytest.raises(ConfigError, match="LINK_TABLE is not set"):
        Settings.from_env({"LINK_STORE": "dynamodb"})
    with pytest.raises(ConfigError, match="LINK_POINTER_REFRESH_S must be a number"):
        Settings.from_env(
            {"LINK_STORE": "dynamodb", "LINK_TABLE": "t", "LINK_POINTER_REFRESH_S": "x"}
        )
    settings = Settings.from_env({"LINK_STORE": "dynamodb", "LINK_TABLE": "golinks-dev-links"})
    assert (settings.store, settings.link_table, settings.redis_url) == (
        "dynamodb",
        "golinks-dev-links",
        None,
    )
    assert Settings.from_env({"REDIS_URL": "redis://x"}).store == "elasticache"


# -- the sync function ------------------------------------------------------------------


@pytest.fixture
def table(dynamodb_regions) -> Iterator[GlobalTable]:
    with GlobalTable(dynamodb_regions, jitter_s=0.02, seed=11) as fresh:
        yield fresh


@pytest.fixture
def primary_sync(table, s3_server, configure):
    """The sync function in the primary region, reaching every region's replica."""
    bucket = new_bucket()
    configure(
        LINK_STORE="dynamodb",
        LINK_TABLE=table.name,
        LINK_TABLE_REGIONS=",".join(REGIONS),
        LINK_TABLE_ENDPOINTS=",".join(f"{r}={table.servers[r].endpoint}" for r in REGIONS),
        AWS_REGION=PRIMARY,
        PRIMARY_REGION=PRIMARY,
        LINK_INDEX_BUCKET=bucket,
        LINK_INDEX_KEY=INDEX_KEY,
        **FAST_ENV,
    )
    return table, bucket


def publish(bucket: str, links: list[Link], sequencer: str) -> tuple[dict, object]:
    index = build_index(links)
    uploaded = put_index(S3Location(bucket, INDEX_KEY), index)
    return s3_event(bucket, INDEX_KEY, uploaded.s3_version_id, sequencer), index


def served_everywhere(table: GlobalTable) -> dict[str, str]:
    table.replication.wait_idle()
    return {r: table.reader(r, refresh_s=0).served().version for r in REGIONS}


def test_a_put_event_publishes_to_every_region(primary_sync, capsys):
    table, bucket = primary_sync
    links = links_as_of(int(time.time()))
    event, index = publish(bucket, links, "0055AED6DCD90281E5")
    result = sync.handler(event, None)["results"][0]
    assert result["status"] == "applied" and result["version"] == index.version
    assert (result["generation"], result["added"], result["pending_regions"]) == (1, len(links), [])
    assert last_log(capsys)["message"] == "applied"
    assert served_everywhere(table) == dict.fromkeys(REGIONS, index.version)
    link, _ = table.reader("ap-southeast-1").lookup("jira/cloud")
    assert link.url == "https://cloud.example.com/issues?key={path}"

    again = sync.handler(event, None)["results"][0]  # redelivered: nothing left to do
    assert (again["status"], again["written"]) == ("unchanged", 0)
    changed, new_index = publish(
        bucket, [*links, Link("new", "https://e.com/n")], "0055AED6DCD90281F0"
    )
    assert sync.handler(changed, None)["results"][0]["added"] == 1
    late = sync.handler(publish(bucket, links, "0055AED6DCD90281E6")[0], None)["results"][0]
    assert late["status"] == "stale"  # an older upload arriving late never wins
    assert served_everywhere(table) == dict.fromkeys(REGIONS, new_index.version)


def test_a_region_not_flipped_in_time_is_named_and_the_retry_flips_it(
    primary_sync, monkeypatch, capsys
):
    table, bucket = primary_sync
    event, first = publish(bucket, links_as_of(int(time.time())), "01")
    sync.handler(event, None)
    table.replication.hold("ap-southeast-1")
    monkeypatch.setenv("LINK_SYNC_FLIP_TIMEOUT_S", "1")
    event, second = publish(bucket, [Link("docs", "https://docs.example.com/v2")], "02")
    with pytest.raises(RegionsPending, match="not yet served in ap-southeast-1"):
        sync.handler(event, None)  # Lambda retries the event
    log = last_log(capsys)
    assert (log["level"], log["status"], log["pending_regions"]) == (
        "warning",
        "applied",
        ["ap-southeast-1"],
    )
    assert served_everywhere(table) == {
        "eu-west-1": second.version,
        "us-west-2": second.version,
        "ap-southeast-1": first.version,
    }
    table.replication.release("ap-southeast-1")
    retried = sync.handler(event, None)["results"][0]  # Lambda's retry, or S3's redelivery
    assert retried["pending_regions"] == [] and retried["pruned"] > 0
    assert served_everywhere(table) == dict.fromkeys(REGIONS, second.version)


def test_an_unreachable_region_is_reported_and_the_others_flip(primary_sync, monkeypatch):
    """Its replica cannot be read back: the other regions flip regardless."""
    table, bucket = primary_sync
    closed = f"http://127.0.0.1:{free_port()}"
    endpoints = {r: table.servers[r].endpoint for r in REGIONS} | {"us-west-2": closed}
    monkeypatch.setenv("LINK_TABLE_ENDPOINTS", ",".join(f"{r}={e}" for r, e in endpoints.items()))
    monkeypatch.setenv("LINK_SYNC_FLIP_TIMEOUT_S", "1")
    event, index = publish(bucket, links_as_of(int(time.time())), "01")
    with pytest.raises(RegionsPending, match=r"not yet served in us-west-2.*Could not connect"):
        sync.handler(event, None)
    table.replication.wait_idle()
    assert table.reader("ap-southeast-1").served().version == index.version


def test_a_second_sync_meanwhile_fails_clearly_so_lambda_retries_it(primary_sync, capsys):
    table, bucket = primary_sync
    event, _ = publish(bucket, links_as_of(int(time.time())), "01")
    table.clients[PRIMARY].put_item(  # another run's lease, still running
        TableName=table.name,
        Item={KEY: {"S": META_KEY}, "lease": {"S": "other"}, "lease_until": {"N": "9e12"}},
    )
    with pytest.raises(SyncConflict, match="another sync is writing the link table"):
        sync.handler(event, None)
    assert last_log(capsys)["message"] == "conflict"
    assert "Item" not in table.clients[PRIMARY].get_item(
        TableName=table.name, Key={KEY: {"S": "docs"}}
    )


def test_the_sync_needs_every_region_the_primary_first(primary_sync, monkeypatch):
    _, bucket = primary_sync
    event, _ = publish(bucket, links_as_of(int(time.time())), "01")
    monkeypatch.setenv("LINK_TABLE_REGIONS", "us-west-2,eu-west-1")
    with pytest.raises(ConfigError, match=r"the primary \(eu-west-1\) first"):
        sync.handler(event, None)
