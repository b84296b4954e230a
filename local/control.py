"""Operating a running local stack from another terminal: `region down|up` and `status`.

The runner listens on a loopback port (written to state.json) for
`POST /regions/<region>/<down|up>`. The request is carried out by the
runner's main thread, which started every child process: a child dies with
the thread that started it (see local.servers), so children are never
started from short-lived threads.

`status_report` reads what the running stack serves: the edge's view of each
region, what each region's health function reports, and how far each
region's replica is behind the writer (Redis: replication bytes; DynamoDB:
the generation its pointer names against the latest written).
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Callable
from concurrent.futures import Future

import redis
import requests
from aiohttp import web

from functions.lean_dynamo import DynamoUnavailable, LeanDynamo
from functions.links.dynamo_items import KEY, META_KEY, region_key
from local.dynamo_stack import LOCAL_CREDENTIALS, TABLE
from local.edge import ORIGIN_VERIFY_HEADER
from local.servers import LOOPBACK
from local.stack import Endpoints, LocalStack

ACTIONS = ("down", "up")


class ControlServer:
    """Takes `region down|up` requests and queues them for the main thread (`serve_one`)."""

    def __init__(self, stack: LocalStack):
        self.stack = stack
        self.requests: queue.Queue[tuple[Callable[[], str], Future]] = queue.Queue()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> ControlServer:
        app = web.Application()
        app.router.add_post("/regions/{region}/{action}", self._region)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, 0)
        await site.start()
        self.url = f"http://{LOOPBACK}:{site._server.sockets[0].getsockname()[1]}"
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def _region(self, request: web.Request) -> web.Response:
        region, action = request.match_info["region"], request.match_info["action"]
        if region not in self.stack.hosts or action not in ACTIONS:
            known = ", ".join(self.stack.hosts)
            return web.json_response(
                {"error": f"use `region down|up REGION` with a region of {known}"}, status=404
            )
        done: Future = Future()
        self.requests.put((lambda: self._carry_out(region, action), done))
        try:
            message = await asyncio.wrap_future(done)
        except Exception as exc:  # reported to the caller, who asked for it
            return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=500)
        return web.json_response({"message": message})

    def _carry_out(self, region: str, action: str) -> str:
        if action == "down":
            self.stack.region_down(region)
            return f"{region} is down: its functions are stopped and it is out of rotation"
        self.stack.region_up(region)
        return f"{region} is up and back in rotation"

    def serve_one(self, timeout: float) -> None:
        """In the main thread: carry out one queued request, if one comes within `timeout`."""
        try:
            work, done = self.requests.get(timeout=timeout)
        except queue.Empty:
            return
        try:
            done.set_result(work())
        except Exception as exc:
            done.set_exception(exc)


def request_region(endpoints: Endpoints, action: str, region: str) -> tuple[bool, str]:
    """Ask the running stack to take `region` down or bring it up; (ok, message)."""
    if not endpoints.control_url:
        return False, "the running stack takes no commands (started without a control port)"
    response = requests.post(f"{endpoints.control_url}/regions/{region}/{action}", timeout=60)
    body = response.json()
    return response.ok, body.get("message") or body.get("error", "")


def replica_lag(primary_url: str, replica_url: str) -> str:
    """How far a replica is behind its primary, in replication-stream bytes."""
    options = {"socket_timeout": 2, "socket_connect_timeout": 1}
    try:
        replica = redis.Redis.from_url(replica_url, **options).info("replication")
    except redis.RedisError:
        return "replica unreachable"
    if replica.get("role") == "master":
        return "primary"
    if replica.get("master_link_status") != "up":
        return "link down"
    try:
        primary = redis.Redis.from_url(primary_url, **options).info("replication")
    except redis.RedisError:
        return "primary unreachable"
    behind = max(primary["master_repl_offset"] - replica.get("slave_repl_offset", 0), 0)
    return "in sync" if behind == 0 else f"{behind} B behind"


def table_lag(endpoints: Endpoints, region: str) -> str:
    """How far a region's replica of the link table is behind: generations its pointer lags."""

    def generation(where: str, key: str) -> int:
        client = LeanDynamo(
            where,
            endpoint=endpoints.dynamodb_endpoints[where],
            credentials=LOCAL_CREDENTIALS,
            connect_timeout=1,
            read_timeout=2,
        )
        try:
            item = client.get_item(TABLE, KEY, key, consistent=True)
        finally:
            client.close()
        return int(item["g"]["N"]) if item else 0

    try:
        latest = generation(endpoints.primary_region, META_KEY)
    except DynamoUnavailable:
        return "writer unreachable"
    try:
        served = generation(region, region_key(region))
    except DynamoUnavailable:
        return "replica unreachable"
    behind = latest - served
    return "in sync" if behind <= 0 else f"{behind} generation{'s' * (behind > 1)} behind"


def status_report(endpoints: Endpoints) -> tuple[str, bool]:
    """(a table of every region, whether every region is healthy)."""
    edge = requests.get(f"{endpoints.edge_url}/_edge/status", timeout=5).json()
    rows = [("REGION", "HEALTH", "VERSION", "LINKS", "REPLICA LAG")]
    all_healthy = True
    for region in edge["regions"]:
        name = region["region"]
        all_healthy &= bool(region["healthy"])
        health = region["status"] or "unknown"
        if not region["healthy"]:
            health = f"{health}, out of rotation"
        count, version = "-", region["version"]
        try:
            report = requests.get(
                f"{endpoints.region_urls[name]}/healthz",
                headers={ORIGIN_VERIFY_HEADER: endpoints.origin_verify},
                timeout=5,
            ).json()
            count = str(report.get("count") if report.get("count") is not None else "-")
            version = version or report.get("version")  # Route 53's checks see no version
        except (requests.RequestException, ValueError):
            pass
        if endpoints.store == "dynamodb":
            lag = table_lag(endpoints, name)
        else:
            lag = replica_lag(endpoints.redis_primary_url, endpoints.redis_replica_urls[name])
        primary = " (primary)" if name == endpoints.primary_region else ""
        rows.append((name + primary, health, version or "-", count, lag))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    verdict = "every region is healthy" if all_healthy else "NOT every region is healthy"
    return "\n".join([*lines, "", f"{verdict}; edge {endpoints.edge_url}"]), all_healthy
