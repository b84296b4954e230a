"""`functions.edge_router.handler`: Lambda@Edge on origin-request: which region answers.

With the Route 53 traffic router there is one CloudFront distribution for the
whole world, and this function picks the region for every request that reaches
an origin (cache misses only):

- The distribution's API origin is the *routing name* (`origin.<domain>`). In
  Route 53 that name is a set of latency CNAME records, one per region, each
  pointing at `<region>.origin.<domain>` and tied to a health check of that
  region's /healthz. Resolved from the function's own region (the regional edge
  cache that runs it), the answer is the closest healthy region; the canonical
  name of the answer says which one.
- The request goes to `<region>.origin.<domain>` (the region's API Gateway custom
  domain, with a valid certificate) with that `Host`.
- A refused request (5xx, or no connection) is retried by CloudFront on the
  origin group's failover origin, which runs this function again: that origin
  carries `x-golinks-route: failover`, and the function sends it to the first
  region in the configured order that is not the latency answer.

Lambda@Edge takes no environment variables, so everything the function needs
arrives with the event, in the origin's custom headers (set on the
distribution): `x-origin-verify` (the secret the regional functions check; it
stays on the origin and CloudFront sends it along), `x-golinks-regions` (the
regions, failover order first) and `x-golinks-route`. The two routing headers
are removed before the request leaves for the origin.

Stdlib only (it runs on x86_64 while the regional functions run on arm64), and
it shares the naming and the header names with the other functions.
"""

from __future__ import annotations

import json
import socket
import time

from functions.origin import ORIGIN_VERIFY_HEADER

#: The first label of the latency-routed name: `origin.<domain>`.
ROUTING_LABEL = "origin"
REGIONS_HEADER = "x-golinks-regions"
ROUTE_HEADER = "x-golinks-route"
FAILOVER_ROUTE = "failover"
#: How long one container keeps a latency answer. Short next to the records' TTL:
#: a region Route 53 takes out is out of this function's answers just as soon.
ANSWER_SECONDS = 5.0

_answers: dict[str, tuple[float, str | None]] = {}


def routing_name(domain: str) -> str:
    """The latency-routed name CloudFront's API origin points at."""
    return f"{ROUTING_LABEL}.{domain}"


def regional_origin(region: str, routing: str) -> str:
    """A region's own origin name (its API Gateway custom domain)."""
    return f"{region}.{routing}"


def latency_answer(routing: str, regions: list[str], resolve=socket.gethostbyname_ex) -> str | None:
    """The region Route 53 answers with for `routing` from here (None: no usable answer)."""
    now = time.monotonic()
    cached = _answers.get(routing)
    if cached and cached[0] > now:
        return cached[1]
    try:
        canonical = resolve(routing)[0].rstrip(".").lower()
    except OSError:
        canonical = ""
    region = canonical.split(".", 1)[0]
    answer = region if canonical == regional_origin(region, routing) and region in regions else None
    _answers[routing] = (now + ANSWER_SECONDS, answer)
    return answer


def choose_region(routing: str, regions: list[str], failover: bool, resolve) -> str:
    """The latency answer; for the failover origin, the first other region."""
    answer = latency_answer(routing, regions, resolve) or regions[0]
    if not failover:
        return answer
    return next((region for region in regions if region != answer), answer)


def handler(event, context=None, resolve=socket.gethostbyname_ex) -> dict:
    request = event["Records"][0]["cf"]["request"]
    custom = (request.get("origin") or {}).get("custom")
    if custom is None:  # an S3 origin (the static site): nothing to route
        return request
    headers = custom.get("customHeaders") or {}
    regions = [r.strip() for r in _header(headers, REGIONS_HEADER).split(",") if r.strip()]
    if not regions or not _header(headers, ORIGIN_VERIFY_HEADER):
        missing = REGIONS_HEADER if not regions else ORIGIN_VERIFY_HEADER
        print(json.dumps({"edge_router": "misconfigured", "missing": missing}))
        return _bad_gateway(f"the distribution's origin lacks the {missing} header")
    failover = _header(headers, ROUTE_HEADER) == FAILOVER_ROUTE
    routing = custom["domainName"]
    if failover:  # the failover origin is a regional name: route on the shared one
        routing = routing.split(".", 1)[1] if routing.split(".", 1)[0] in regions else routing
    region = choose_region(routing, regions, failover, resolve)
    target = regional_origin(region, routing)
    custom["domainName"] = target
    custom["customHeaders"] = {
        name: values
        for name, values in headers.items()
        if name not in (REGIONS_HEADER, ROUTE_HEADER)
    }
    request["headers"]["host"] = [{"key": "Host", "value": target}]
    return request


def _header(headers: dict, name: str) -> str:
    values = headers.get(name) or [{}]
    return str(values[0].get("value", ""))


def _bad_gateway(reason: str) -> dict:
    return {
        "status": "502",
        "statusDescription": "Bad Gateway",
        "headers": {
            "content-type": [{"key": "Content-Type", "value": "text/plain; charset=utf-8"}],
            "cache-control": [{"key": "Cache-Control", "value": "no-store"}],
        },
        "body": f"bad gateway: {reason}\n",
    }
