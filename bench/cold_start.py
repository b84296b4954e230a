"""Cold start: a fresh interpreter imports the redirect function and answers one request.

Compared with the same lookup written with FastAPI + Mangum and with Powertools'
HTTP API resolver (both with redis-py), against the same Redis, each timed as a
whole process (interpreter start included), runs interleaved, median of RUNS.
Bytecode caches are warmed first for every variant, so no variant pays for
compiling and the references get their best case.
Targets: <= 0.15x FastAPI + Mangum, <= 0.3x Powertools.
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

from functions.links.index import build_index
from functions.links.model import Link
from functions.links.redis_sync import sync_index
from local.servers import RedisServer

from .report import table

REPO = Path(__file__).resolve().parent.parent
RUNS = 21
EVENT = json.loads((REPO / "tests" / "events" / "http-api-proxy.json").read_text())
EVENT.update(rawPath="/docs", rawQueryString="", body=None, isBase64Encoded=False)
EVENT["requestContext"]["http"].update(method="GET", path="/docs")
EVENT["pathParameters"] = {"path": "docs"}
VARIANTS = {
    "functions.redirect (this service)": "functions.redirect",
    "FastAPI + Mangum (reference)": "bench.reference_apps.fastapi_mangum",
    "Powertools resolver (reference)": "bench.reference_apps.powertools",
}
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
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp:
        server = RedisServer(Path(tmp), name="bench-redis").start()
        try:
            sync_index(server.client(), build_index([Link("docs", "https://docs.example.com/")]))
            env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
            env.update(REDIS_URL=server.url, PYTHONPATH=str(REPO), AWS_REGION="eu-west-1")
            for module in VARIANTS.values():  # write bytecode caches, check each one works
                one_run(module, env)
            times: dict[str, list[float]] = {name: [] for name in VARIANTS}
            for _ in range(RUNS):
                for name, module in VARIANTS.items():
                    times[name].append(one_run(module, env))
        finally:
            server.stop()
    ours, fastapi, powertools = (statistics.median(times[name]) * 1000 for name in VARIANTS)
    print(f"Cold start: fresh interpreter, import + one answered request (median of {RUNS})")
    print(
        table(
            ["variant", "ms", "ours / it", "target"],
            [
                [next(iter(VARIANTS)), f"{ours:.1f}", "", ""],
                [
                    list(VARIANTS)[1],
                    f"{fastapi:.1f}",
                    f"{ours / fastapi:.2f}",
                    f"<= 0.15 {'ok' if ours / fastapi <= 0.15 else 'MISSED'}",
                ],
                [
                    list(VARIANTS)[2],
                    f"{powertools:.1f}",
                    f"{ours / powertools:.2f}",
                    f"<= 0.30 {'ok' if ours / powertools <= 0.3 else 'MISSED'}",
                ],
            ],
        )
    )
