"""Cold start: a fresh interpreter imports the redirect function and answers one request.

Both stores' hit paths, compared with the same lookup written with FastAPI +
Mangum and with Powertools' HTTP API resolver (both with redis-py), each timed
as a whole process (interpreter start included), runs interleaved, median of
RUNS. Bytecode caches are warmed first for every variant, so no variant pays
for compiling and the references get their best case.

- Redis: `functions.redirect` against a local redis-server. Targets: <= 0.15x
  FastAPI + Mangum, <= 0.3x Powertools.
- DynamoDB: `functions.redirect` with LINK_STORE=dynamodb (the lean signed
  reader) against a local DynamoDB (moto server), beside the same lookup with
  boto3. Targets: <= 0.25x FastAPI + Mangum, <= 0.5x Powertools.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from functions.links.dynamo_sync import LinkTable, Replica, sync_table
from functions.links.index import build_index
from functions.links.model import Link
from functions.links.redis_sync import sync_index
from local.dynamo_replication import create_link_table
from local.servers import MotoServer, RedisServer, local_dynamodb_client, local_s3_env

from .report import table
from .summary import at_most, record

REPO = Path(__file__).resolve().parent.parent
RUNS = 21
REGION = "eu-west-1"
TABLE = "bench-cold-links"
EVENT = json.loads((REPO / "tests" / "events" / "http-api-proxy.json").read_text())
EVENT.update(rawPath="/docs", rawQueryString="", body=None, isBase64Encoded=False)
EVENT["requestContext"]["http"].update(method="GET", path="/docs")
EVENT["pathParameters"] = {"path": "docs"}
REDIS = "Redis: functions.redirect (this service)"
DYNAMODB = "DynamoDB: functions.redirect (this service)"
DYNAMODB_BOTO3 = "DynamoDB: the same lookup with boto3"
FASTAPI = "FastAPI + Mangum, redis-py (reference)"
POWERTOOLS = "Powertools resolver, redis-py (reference)"
#: variant -> (module, its store: LINK_STORE for the handler)
VARIANTS = {
    REDIS: ("functions.redirect", "elasticache"),
    DYNAMODB: ("functions.redirect", "dynamodb"),
    DYNAMODB_BOTO3: ("bench.reference_apps.dynamodb_boto3", "dynamodb"),
    FASTAPI: ("bench.reference_apps.fastapi_mangum", "elasticache"),
    POWERTOOLS: ("bench.reference_apps.powertools", "elasticache"),
}
#: store -> (its variant, target vs FastAPI + Mangum, target vs Powertools)
TARGETS = {"redis": (REDIS, 0.15, 0.3), "dynamodb": (DYNAMODB, 0.25, 0.5)}
PROBE = (
    "import json, sys; from {module} import handler; "
    "r = handler(json.loads(sys.argv[1]), None); "
    "assert r['statusCode'] == 302, r"
)


def one_run(module: str, env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module), json.dumps(EVENT)],
        env=env,
        cwd=REPO,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def run() -> None:
    index = build_index([Link("docs", "https://docs.example.com/")])
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp:
        server = RedisServer(Path(tmp) / "redis", name="bench-redis").start()
        moto = MotoServer(Path(tmp) / "dynamodb", name="bench-dynamodb").start()
        try:
            sync_index(server.client(), index)
            client = local_dynamodb_client(moto.endpoint, REGION)
            create_link_table(client, TABLE)
            replica = Replica(REGION, client)
            sync_table(LinkTable(TABLE, replica, (replica,)), index, settle_s=0, refresh_s=0)
            env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
            env.update(local_s3_env(moto.endpoint))
            env.update(
                REDIS_URL=server.url,
                PYTHONPATH=str(REPO),
                AWS_REGION=REGION,
                AWS_ENDPOINT_URL_DYNAMODB=moto.endpoint,
                LINK_TABLE=TABLE,
            )
            envs = {store: {**env, "LINK_STORE": store} for _, store in VARIANTS.values()}
            for module, store in VARIANTS.values():  # write bytecode caches, check each works
                one_run(module, envs[store])
            times: dict[str, list[float]] = {name: [] for name in VARIANTS}
            for _ in range(RUNS):
                for name, (module, store) in VARIANTS.items():
                    times[name].append(one_run(module, envs[store]))
        finally:
            moto.stop()
            server.stop()
    median = {name: statistics.median(t) * 1000 for name, t in times.items()}
    fastapi, powertools = median[FASTAPI], median[POWERTOOLS]
    print(f"Cold start: fresh interpreter, import + one answered redirect (median of {RUNS})")
    print(
        table(
            ["variant", "ms", "/ FastAPI+Mangum", "/ Powertools"],
            [
                [name, f"{ms:.1f}", f"{ms / fastapi:.2f}", f"{ms / powertools:.2f}"]
                for name, ms in median.items()
            ],
        )
    )
    for store, (variant, vs_fastapi, vs_powertools) in TARGETS.items():
        ours = median[variant]
        for reference, ms, limit in (
            ("FastAPI+Mangum", fastapi, vs_fastapi),
            ("Powertools", powertools, vs_powertools),
        ):
            ratio, target, ok = at_most(ours / ms, limit)
            verdict = "ok" if ok else "MISSED"
            print(f"{store}: {ratio:.2f}x {reference} (target {target}: {verdict})")
            record(
                f"cold start vs {reference}",
                store,
                f"{ours:.0f} ms vs {ms:.0f} ms",
                ratio,
                target=target,
                ok=ok,
            )
    boto3_ms = median[DYNAMODB_BOTO3]
    record(
        "cold start, same lookup with boto3",
        "dynamodb",
        f"{boto3_ms:.0f} ms vs the handler {median[DYNAMODB]:.0f} ms",
        boto3_ms / median[DYNAMODB],
        target="why the lean reader",
    )
