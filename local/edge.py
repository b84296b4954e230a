"""The local edge: what Cloudflare's load balancer and each region's CloudFront do.

- Cloudflare: a monitor probes every region's `/healthz` each `interval`; a
  region leaves the rotation on its first failed probe (non-200, timeout or
  refused) and rejoins on its first good one. Each client (its location from
  `X-Client-Region`, default the primary region) is steered to the
  lowest-latency healthy region; with none healthy, the fallback pool (the
  primary region) is tried anyway. A request whose region refuses the
  connection is retried on the next region, as Cloudflare retries another
  origin. The simulated client<->region round trip is added to every answer.
- CloudFront (one cache per region): redirects and error pages are cached for
  their `Cache-Control: max-age`; the static site (`/`, `/static/*`, root
  files) comes from the region's static bucket; every request to the API
  carries the `x-origin-verify` header.

`GET /_edge/status` answers JSON: each region's health, probe latency,
status and the index version it serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
from aiohttp import web

from functions.links.model import ROOT_FILES, STATIC_PREFIX
from local.topology import REGIONS, Topology

CLIENT_REGION_HEADER = "X-Client-Region"
ORIGIN_VERIFY_HEADER = "x-origin-verify"
SERVED_BY_HEADER = "X-Served-By-Region"
CACHE_HEADER = "X-Edge-Cache"
CACHEABLE_STATUSES = {301, 302, 307, 308, 404, 410}
CACHE_ENTRIES = 10_000
_MAX_AGE_RE = re.compile(r"(?:s-maxage|max-age)=(\d+)")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}


class StaticSite(Protocol):
    def get(self, region: str, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and content type, or None when missing."""


@dataclass
class RegionState:
    name: str
    url: str
    healthy: bool = False
    status: str | None = None
    version: str | None = None
    probe_ms: float | None = None
    last_probe: float | None = None
    error: str | None = None
    cache: OrderedDict = field(default_factory=OrderedDict)

    def as_json(self) -> dict:
        return {
            "region": self.name,
            "healthy": self.healthy,
            "status": self.status,
            "version": self.version,
            "probe_ms": None if self.probe_ms is None else round(self.probe_ms, 2),
            "last_probe": self.last_probe,
            "error": self.error,
        }


class Edge:
    """Serve clients on `port`, steering them over `regions` (name -> API base URL)."""

    def __init__(
        self,
        topology: Topology,
        regions: dict[str, str],
        *,
        origin_verify: str,
        static_site: StaticSite,
        interval: float = 1.0,
        port: int = 8080,
    ):
        self.topology = topology
        self.regions = {name: RegionState(name, url) for name, url in regions.items()}
        self.origin_verify = origin_verify
        self.static_site = static_site
        self.interval = interval
        self.port = port
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._monitor: asyncio.Task | None = None

    async def start(self) -> Edge:
        timeout = aiohttp.ClientTimeout(total=10)
        self._session = aiohttp.ClientSession(timeout=timeout, auto_decompress=False)
        await self.probe_all()
        self._monitor = asyncio.create_task(self._monitor_loop())
        app = web.Application()
        app.router.add_get("/_edge/status", self._status)
        app.router.add_route("*", "/{tail:.*}", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._monitor:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        if self._runner:
            await self._runner.cleanup()
        if self._session:
            await self._session.close()

    # -- the monitor -------------------------------------------------------

    async def _monitor_loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.probe_all()

    async def probe_all(self) -> None:
        await asyncio.gather(*(self._probe(region) for region in self.regions.values()))

    async def _probe(self, region: RegionState) -> None:
        started = time.perf_counter()
        timeout = aiohttp.ClientTimeout(total=max(self.interval * 0.8, 0.05))
        try:
            async with self._session.get(
                f"{region.url}/healthz",
                headers={ORIGIN_VERIFY_HEADER: self.origin_verify},
                timeout=timeout,
            ) as response:
                body = await response.json(content_type=None)
            region.healthy = response.status == 200
            region.status, region.version = body.get("status"), body.get("version")
            region.error = None if region.healthy else f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError, ValueError, AttributeError) as exc:
            region.healthy, region.status = False, "unreachable"
            region.error = f"{type(exc).__name__}: {exc}".strip(": ")
        region.probe_ms = (time.perf_counter() - started) * 1000
        region.last_probe = time.time()

    # -- serving ------------------------------------------------------------

    async def _status(self, request: web.Request) -> web.Response:
        body = {
            "primary_region": self.topology.primary,
            "monitor_interval_s": self.interval,
            "regions": [region.as_json() for region in self.regions.values()],
        }
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    def route(self, client_region: str) -> list[str]:
        """Regions to try for this client, best first (the fallback pool when none is up)."""
        healthy = [
            name for name in self.topology.by_latency(client_region) if self.regions[name].healthy
        ]
        return healthy or [self.topology.primary]

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        client_region = request.headers.get(CLIENT_REGION_HEADER, self.topology.primary)
        if client_region not in REGIONS:
            return web.Response(status=400, text=f"unknown {CLIENT_REGION_HEADER}\n")
        response = None
        for region_name in self.route(client_region):
            response = await self._from_region(self.regions[region_name], request)
            if response is not None:
                break
            self.regions[region_name].healthy = False  # refused: out until the next probe
        if response is None:
            response = web.Response(status=502, text="no region could answer\n")
            region_name = "none"
        response.headers[SERVED_BY_HEADER] = region_name
        if region_name in self.regions:  # the client's round trip to the region it reached
            await precise_sleep(self.topology.rtt_ms(client_region, region_name) / 1000)
        return response

    async def _from_region(self, region: RegionState, request: web.Request) -> web.Response | None:
        path = request.path
        if request.method in ("GET", "HEAD") and _is_static(path):
            return self._static(region.name, path, request.method)
        cache_key = request.raw_path
        cacheable_request = request.method in ("GET", "HEAD")
        if cacheable_request and (cached := self._cached(region, cache_key)):
            status, headers, body, stored_at = cached
            response = web.Response(status=status, body=body if request.method == "GET" else None)
            response.headers.extend(headers)
            response.headers["Age"] = str(int(time.monotonic() - stored_at))
            response.headers[CACHE_HEADER] = "hit"
            return response
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", *_HOP_BY_HOP)
        }
        headers[ORIGIN_VERIFY_HEADER] = self.origin_verify
        try:
            async with self._session.request(
                request.method,
                f"{region.url}{request.raw_path}",
                headers=headers,
                data=await request.read(),
                allow_redirects=False,
            ) as upstream:
                body = await upstream.read()
        except aiohttp.ClientConnectionError:
            return None
        kept = [(k, v) for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP]
        if cacheable_request and upstream.status in CACHEABLE_STATUSES:
            self._store(region, cache_key, upstream.status, kept, body)
        response = web.Response(status=upstream.status, body=body)
        response.headers.extend(kept)
        response.headers[CACHE_HEADER] = "miss"
        return response

    def _cached(self, region: RegionState, key: str):
        entry = region.cache.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if time.monotonic() >= expires_at:
            del region.cache[key]
            return None
        region.cache.move_to_end(key)
        return value

    def _store(self, region: RegionState, key: str, status: int, headers, body: bytes) -> None:
        cache_control = dict(headers).get("Cache-Control", "")
        if any(word in cache_control for word in ("no-store", "private", "no-cache")):
            return
        match = _MAX_AGE_RE.search(cache_control)
        if not match or int(match.group(1)) <= 0:
            return
        now = time.monotonic()
        region.cache[key] = (now + int(match.group(1)), (status, headers, body, now))
        if len(region.cache) > CACHE_ENTRIES:
            region.cache.popitem(last=False)

    def _static(self, region: str, path: str, method: str) -> web.Response:
        key = "index.html" if path == "/" else path.lstrip("/")
        found = self.static_site.get(region, key)
        if found is None:
            found = self.static_site.get(region, "static/404.html") or (
                b"not found\n",
                "text/plain",
            )
            status = 404
        else:
            status = 200
        body, content_type = found
        response = web.Response(status=status, body=body if method == "GET" else None)
        response.headers["Content-Type"] = content_type
        response.headers["Cache-Control"] = "public, max-age=300"
        response.headers[CACHE_HEADER] = "static"
        return response


async def precise_sleep(seconds: float) -> None:
    """Sleep `seconds` to within ~0.1 ms. asyncio's timers wake up to ~1 ms late
    (epoll timeouts are whole milliseconds), which would add a millisecond to
    every simulated round trip; the last millisecond is spent yielding instead."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    if seconds > 0.002:
        await asyncio.sleep(seconds - 0.0015)
    while loop.time() < deadline:
        await asyncio.sleep(0)


def _is_static(path: str) -> bool:
    return path == "/" or path.startswith(f"/{STATIC_PREFIX}/") or path.lstrip("/") in ROOT_FILES
