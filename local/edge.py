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
  their `Cache-Control: max-age`, keyed by the path and query as the client
  sent them; the static site (`/`, `/static/*`, root files,
  the link directory `/_links` and `/_links.json`) comes from the region's
  static bucket; every request to the API carries the
  `x-origin-verify` header. As CloudFront does, the path is normalised (dot
  segments removed, escapes decoded) only to choose between the static site
  and the API; the API gets the path exactly as the client sent it, `/./`,
  `/../` and percent-escapes included.
- CloudFront's invalidation API, for each region's "distribution"
  (`distribution_id(region)`; `distribution_ids()` maps every region to its
  own), under `/_edge/cloudfront` (point boto3 at it with
  `AWS_ENDPOINT_URL_CLOUDFRONT`): CreateInvalidation drops the matching
  entries from that distribution's cache at once and answers `Completed`;
  GetInvalidation reads it back. A fetch that was under way when the cache was
  invalidated is not stored.

`GET /_edge/status` answers JSON: each region's health, probe latency,
status and the index version it serves.

A request the edge cannot take (unparseable HTTP, a target that is not a
path, a body whose Content-Encoding does not decode, an unknown client
region) gets a 4xx that names the problem without echoing the request, and
one line through `report` (the terminal in `make dev`), never a traceback.
Changes of a region's health are reported the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Protocol
from xml.etree import ElementTree
from xml.parsers.expat import ExpatError

import aiohttp
import xmltodict
from aiohttp import http_exceptions, web
from yarl import URL

from functions.links.invalidation import path_matches
from functions.links.model import DIRECTORY_FILES, ROOT_FILES, STATIC_PREFIX
from local.topology import REGIONS, Topology

CLIENT_REGION_HEADER = "X-Client-Region"
ORIGIN_VERIFY_HEADER = "x-origin-verify"
SERVED_BY_HEADER = "X-Served-By-Region"
CACHE_HEADER = "X-Edge-Cache"
CACHEABLE_STATUSES = {301, 302, 307, 308, 404, 410}
CACHE_ENTRIES = 10_000
_MAX_AGE_RE = re.compile(r"\bmax-age=(\d+)")
_S_MAXAGE_RE = re.compile(r"\bs-maxage=(\d+)")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}


#: Where the edge answers CloudFront's invalidation API (boto3's endpoint URL for cloudfront).
CLOUDFRONT_API_PREFIX = "/_edge/cloudfront"
_CLOUDFRONT_API_RE = re.compile(
    re.escape(CLOUDFRONT_API_PREFIX) + r"/2020-05-31/distribution/([^/]+)/invalidation(?:/([^/]+))?"
)
_CLOUDFRONT_XMLNS = "http://cloudfront.amazonaws.com/doc/2020-05-31/"


def distribution_id(region: str) -> str:
    """The local stand-in for a region's CloudFront distribution ID."""
    return f"LOCAL-{region.upper()}"


class StaticSite(Protocol):
    def get(self, region: str, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and content type, or None when missing."""


@dataclass(frozen=True)
class CachedAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    stored_at: float
    region: str
    """The region whose answer it is."""


@dataclass
class Distribution:
    """A CloudFront distribution: its cache (CloudFront's cache key: the path and query as
    sent; each answer kept for its `Cache-Control` s-maxage or max-age) and its invalidations."""

    id: str
    cache: OrderedDict[str, tuple[float, CachedAnswer]] = field(default_factory=OrderedDict)
    #: Bumped by every invalidation, so a fetch begun before one is not cached.
    generation: int = 0
    invalidations: dict[str, dict] = field(default_factory=dict)

    def cached(self, key: str) -> CachedAnswer | None:
        entry = self.cache.get(key)
        if entry is None:
            return None
        expires_at, answer = entry
        if time.monotonic() >= expires_at:
            del self.cache[key]
            return None
        self.cache.move_to_end(key)
        return answer

    def store(self, key: str, answer: CachedAnswer) -> None:
        cache_control = dict(answer.headers).get("Cache-Control", "")
        if any(word in cache_control for word in ("no-store", "private", "no-cache")):
            return
        # s-maxage is for shared caches such as CloudFront, and wins over max-age
        match = _S_MAXAGE_RE.search(cache_control) or _MAX_AGE_RE.search(cache_control)
        if not match or int(match.group(1)) <= 0:
            return
        self.cache[key] = (answer.stored_at + int(match.group(1)), answer)
        if len(self.cache) > CACHE_ENTRIES:
            self.cache.popitem(last=False)

    def invalidate(self, paths: list[str]) -> int:
        """Drop every cached answer one of `paths` matches; how many."""
        self.generation += 1
        stale = [key for key in self.cache if any(path_matches(p, key) for p in paths)]
        for key in stale:
            del self.cache[key]
        return len(stale)


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
        report: Callable[[str], None] = print,
    ):
        """`report` receives one line per bad request and per change of a region's health."""
        self.topology = topology
        self.regions = {name: RegionState(name, url) for name, url in regions.items()}
        self.distributions = {
            dist: Distribution(dist) for dist in dict.fromkeys(self.distribution_ids().values())
        }
        self.origin_verify = origin_verify
        self.static_site = static_site
        self.interval = interval
        self.port = port
        self.report = report
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.ServerRunner | None = None
        self._monitor: asyncio.Task | None = None

    #: How long a client may still be sent to a region after it left the rotation: the load
    #: balancer steers every request afresh.
    answers_kept_s = 0.0

    def distribution_ids(self) -> dict[str, str]:
        """Region -> the CloudFront distribution its clients go through: one per region."""
        return {region: distribution_id(region) for region in self.regions}

    async def start(self) -> Edge:
        timeout = aiohttp.ClientTimeout(total=10)
        self._session = aiohttp.ClientSession(timeout=timeout, auto_decompress=False)
        await self.probe_all()
        self._monitor = asyncio.create_task(self._monitor_loop())
        self._runner = web.ServerRunner(QuietServer(self._handle, self._report_bad_request))
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
            healthy = response.status == 200
            region.status, region.version = body.get("status"), body.get("version")
            region.error = None if healthy else f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError, ValueError, AttributeError) as exc:
            healthy, region.status = False, "unreachable"
            region.error = f"{type(exc).__name__}: {exc}".strip(": ")
        region.probe_ms = (time.perf_counter() - started) * 1000
        was_probed, was_healthy = region.last_probe is not None, region.healthy
        region.healthy, region.last_probe = healthy, time.time()
        if was_probed and healthy != was_healthy:
            change = "back in rotation" if healthy else f"out of rotation ({region.error})"
            self.report(f"edge: {region.name} {change}")

    # -- serving ------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        try:
            if not request.raw_path.startswith("/"):  # absolute-form, authority-form, `*`
                raise BadRequest("the request target must be a path")
            if request.path == "/_edge/status" and request.method in ("GET", "HEAD"):
                return await self._status(request)
            if api := _CLOUDFRONT_API_RE.fullmatch(request.path):
                return await self._invalidation_api(request, *api.groups())
            return await self._serve(request)
        except BadRequest as exc:
            return self._bad_request(request, HTTPStatus.BAD_REQUEST, exc.reason)
        except (http_exceptions.HttpProcessingError, web.RequestPayloadError) as exc:
            return self._bad_request(request, *describe_bad_request(exc))

    def _bad_request(self, request: web.BaseRequest, status: HTTPStatus, reason: str):
        self._report_bad_request(request, status, reason)
        return bad_request_response(status, reason)

    def _report_bad_request(self, request: web.BaseRequest, status: int, reason: str) -> None:
        self.report(f"edge: {status} for a bad request from {request.remote}: {reason}")

    async def _status(self, request: web.BaseRequest) -> web.Response:
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

    async def _serve(self, request: web.BaseRequest) -> web.StreamResponse:
        client_region = request.headers.get(CLIENT_REGION_HEADER, self.topology.primary)
        if client_region not in REGIONS:
            raise BadRequest(f"unknown {CLIENT_REGION_HEADER}")
        response = None
        for region_name in self.route(client_region):
            response = await self._from_region(self.regions[region_name], request)
            if response is not None:
                break
            self.regions[region_name].healthy = False  # refused: out until the next probe
            self.report(f"edge: {region_name} out of rotation (refused a connection)")
        if response is None:
            response = web.Response(status=502, text="no region could answer\n")
            region_name = "none"
        response.headers[SERVED_BY_HEADER] = region_name
        if region_name in self.regions:  # the client's round trip to the region it reached
            await precise_sleep(self.topology.rtt_ms(client_region, region_name) / 1000)
        return response

    async def _from_region(
        self, region: RegionState, request: web.BaseRequest
    ) -> web.Response | None:
        if static := self._static_site_answer(region.name, request):
            return static
        distribution = self.distributions[distribution_id(region.name)]
        cached = self._cached_response(distribution, request)
        return cached or await self._from_origin(region, request, distribution)

    def _cached_response(
        self, distribution: Distribution, request: web.BaseRequest
    ) -> web.Response | None:
        """The distribution's cached answer for the request, marked as a hit (None: a miss)."""
        if request.method not in ("GET", "HEAD"):
            return None
        answer = distribution.cached(request.raw_path)
        if answer is None:
            return None
        response = web.Response(
            status=answer.status, body=answer.body if request.method == "GET" else None
        )
        response.headers.extend(answer.headers)
        response.headers["Age"] = str(int(time.monotonic() - answer.stored_at))
        response.headers[CACHE_HEADER] = "hit"
        response.headers[SERVED_BY_HEADER] = answer.region
        return response

    async def _from_origin(
        self, region: RegionState, request: web.BaseRequest, distribution: Distribution
    ) -> web.Response | None:
        """The region's API answer, through `distribution` (which may keep it); None: refused."""
        generation = distribution.generation
        headers = {  # the body is forwarded decoded: its encoding goes with it
            k: v
            for k, v in request.headers.items()
            if k.lower() not in ("host", "content-encoding", *_HOP_BY_HOP)
        }
        headers[ORIGIN_VERIFY_HEADER] = self.origin_verify
        try:
            async with self._session.request(
                request.method,
                URL(f"{region.url}{request.raw_path}", encoded=True),  # forwarded as sent
                headers=headers,
                data=await request.read(),
                allow_redirects=False,
            ) as upstream:
                body = await upstream.read()
        except aiohttp.ClientConnectionError:
            return None
        kept = [(k, v) for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP]
        fresh = generation == distribution.generation
        cacheable = request.method in ("GET", "HEAD") and upstream.status in CACHEABLE_STATUSES
        if cacheable and fresh:
            answer = CachedAnswer(upstream.status, kept, body, time.monotonic(), region.name)
            distribution.store(request.raw_path, answer)
        response = web.Response(status=upstream.status, body=body)
        response.headers.extend(kept)
        response.headers[CACHE_HEADER] = "miss"
        return response

    # -- CloudFront's invalidation API -------------------------------------------

    def invalidate(self, distribution: str, paths: list[str]) -> int:
        """Drop every cached answer of the distribution that one of `paths` matches; how many."""
        return self.distributions[distribution].invalidate(paths)

    async def _invalidation_api(
        self, request: web.BaseRequest, distribution_id_: str, invalidation_id: str | None
    ) -> web.Response:
        """CreateInvalidation (POST) and GetInvalidation (GET) for one distribution's cache."""
        distribution = self.distributions.get(distribution_id_)
        if request.method == "GET" and invalidation_id:
            if distribution is None or invalidation_id not in distribution.invalidations:
                return _cloudfront_error(
                    404, "NoSuchInvalidation", "The specified invalidation does not exist."
                )
            return _invalidation_xml(invalidation_id, distribution.invalidations[invalidation_id])
        if request.method != "POST" or invalidation_id:
            return _cloudfront_error(405, "MethodNotAllowed", "Not a CloudFront API call.")
        if distribution is None:
            return _cloudfront_error(
                404, "NoSuchDistribution", "The specified distribution does not exist."
            )
        try:  # xmltodict refuses entity declarations: no entity expansion attacks
            batch = xmltodict.parse(await request.read(), force_list=("Path",))["InvalidationBatch"]
            paths = batch["Paths"]["Items"]["Path"]
            reference = batch.get("CallerReference") or ""
        except (ExpatError, ValueError, KeyError, TypeError):
            return _cloudfront_error(400, "MalformedXML", "The XML document is not well formed.")
        if not isinstance(paths, list) or not all(
            isinstance(p, str) and p.startswith("/") for p in paths
        ):
            return _cloudfront_error(400, "InvalidArgument", "Paths must start with '/'.")
        distribution.invalidate(paths)
        invalidation_id = "I" + secrets.token_hex(6).upper()
        distribution.invalidations[invalidation_id] = {
            "paths": paths,
            "reference": reference,
            "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        }
        response = _invalidation_xml(invalidation_id, distribution.invalidations[invalidation_id])
        response.set_status(201)
        response.headers["Location"] = f"{request.url}/{invalidation_id}"
        return response

    def _static_site_answer(self, region: str, request: web.BaseRequest) -> web.Response | None:
        """The answer from the region's static-site bucket, for the site's paths (else None)."""
        path = behavior_path(request.raw_path)
        if request.method in ("GET", "HEAD") and _is_static(path):
            return self._static(region, path, request.method)
        return None

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


class BadRequest(Exception):
    """A request the edge refuses; `reason` is ours, never the client's bytes."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# What went wrong, in our words: aiohttp's own messages quote the offending bytes.
_PARSE_ERRORS = [
    (http_exceptions.BadHttpMethod, "not an HTTP request"),
    (http_exceptions.BadStatusLine, "malformed request line"),
    (http_exceptions.InvalidURLError, "malformed request target"),
    (http_exceptions.LineTooLong, "request line or header too long"),
    (http_exceptions.InvalidHeader, "malformed header"),
    (http_exceptions.ContentEncodingError, "body does not match its Content-Encoding"),
    (http_exceptions.TransferEncodingError, "malformed chunked body"),
    (http_exceptions.ContentLengthError, "body shorter than its Content-Length"),
    (http_exceptions.BadHttpMessage, "malformed request"),
]


def describe_bad_request(exc: BaseException | None) -> tuple[HTTPStatus, str]:
    """(4xx status, a reason that quotes nothing) for an exception from parsing a request."""
    if isinstance(exc, web.RequestPayloadError):
        exc = exc.__cause__ or exc
    if isinstance(exc, web.HTTPException) and 400 <= exc.status < 500:
        return HTTPStatus(exc.status), HTTPStatus(exc.status).phrase.lower()
    status = HTTPStatus.BAD_REQUEST
    if isinstance(exc, http_exceptions.LineTooLong):
        status = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
    for kind, reason in _PARSE_ERRORS:
        if isinstance(exc, kind):
            return status, reason
    return status, "malformed request"


def bad_request_response(status: HTTPStatus, reason: str) -> web.Response:
    response = web.Response(status=status, text=f"{status.value} {status.phrase}: {reason}\n")
    response.headers["Cache-Control"] = "no-store"
    response.force_close()
    return response


class QuietServer(web.Server):
    """aiohttp's low-level server, answering what it cannot parse with a bare 4xx.

    aiohttp's own error answer quotes the offending bytes and its log carries a
    traceback; here each bad request is one call of `report(request, status,
    reason)` and an answer in our words. A failure in the handler itself (a
    bug, not the client's doing) is a 500, reported on one line too.
    """

    def __init__(self, handler, report: Callable[[web.BaseRequest, int, str], None]):
        super().__init__(handler)
        self._report = report

    def __call__(self) -> web.RequestHandler:
        return _QuietProtocol(self, self._report, loop=asyncio.get_running_loop())


_silent = logging.getLogger("local.edge.http")
_silent.propagate = False
_silent.addHandler(logging.NullHandler())


class _QuietProtocol(web.RequestHandler):
    def __init__(self, server: web.Server, report, *, loop: asyncio.AbstractEventLoop):
        super().__init__(server, loop=loop, logger=_silent, access_log=None)
        self._report = report

    def handle_error(self, request, status=500, exc=None, message=None) -> web.StreamResponse:
        if request.writer.output_size > 0:  # the answer has started: only closing is left
            raise ConnectionError("cannot answer a request whose answer has started")
        if status >= 500:
            self._report(request, status, f"internal error ({type(exc).__name__})")
            return bad_request_response(HTTPStatus(status), "internal error")
        status, reason = describe_bad_request(exc)
        self._report(request, status, reason)
        return bad_request_response(status, reason)


def behavior_path(raw_path: str) -> str:
    """The path CloudFront matches cache behaviours against: dot segments removed, decoded."""
    return URL("http://edge" + raw_path.split("?", 1)[0]).path


def _invalidation_xml(invalidation_id: str, invalidation: dict) -> web.Response:
    root = ElementTree.Element("Invalidation", xmlns=_CLOUDFRONT_XMLNS)
    ElementTree.SubElement(root, "Id").text = invalidation_id
    ElementTree.SubElement(root, "Status").text = "Completed"  # purged synchronously
    ElementTree.SubElement(root, "CreateTime").text = invalidation["created"]
    batch = ElementTree.SubElement(root, "InvalidationBatch")
    paths = ElementTree.SubElement(batch, "Paths")
    ElementTree.SubElement(paths, "Quantity").text = str(len(invalidation["paths"]))
    items = ElementTree.SubElement(paths, "Items")
    for path in invalidation["paths"]:
        ElementTree.SubElement(items, "Path").text = path
    ElementTree.SubElement(batch, "CallerReference").text = invalidation["reference"]
    return web.Response(body=ElementTree.tostring(root), content_type="text/xml")


def _cloudfront_error(status: int, code: str, message: str) -> web.Response:
    root = ElementTree.Element("ErrorResponse", xmlns=_CLOUDFRONT_XMLNS)
    error = ElementTree.SubElement(root, "Error")
    ElementTree.SubElement(error, "Type").text = "Sender"
    ElementTree.SubElement(error, "Code").text = code
    ElementTree.SubElement(error, "Message").text = message
    return web.Response(status=status, body=ElementTree.tostring(root), content_type="text/xml")


def _is_static(path: str) -> bool:
    key = path.lstrip("/")
    static_file = key in ROOT_FILES or key in DIRECTORY_FILES
    return path == "/" or path.startswith(f"/{STATIC_PREFIX}/") or static_file
