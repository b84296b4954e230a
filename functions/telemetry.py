"""One structured log line per request, carrying CloudWatch Embedded Metric Format.

CloudWatch Logs turns the `_aws` block into metrics (requests and latency by
outcome) with no API call from the function. The line is built by hand: it is
on every request's path and json.dumps of the whole record costs more.
"""

from __future__ import annotations

import json
import sys
import time

NAMESPACE = "GoLinks"


def log_request(
    function: str, region: str, event, *, status: int, slug: str | None, source: str, started: float
) -> None:
    """Log one request; `source` says what answered: redis, s3-fallback, miss or none."""
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    context = event.get("requestContext") if isinstance(event, dict) else None
    request_id = context.get("requestId") if isinstance(context, dict) else None
    request_id = json.dumps(request_id if isinstance(request_id, str) else None)
    sys.stdout.write(
        f'{{"_aws":{{"Timestamp":{int(time.time() * 1000)},"CloudWatchMetrics":[{{'
        f'"Namespace":"{NAMESPACE}","Dimensions":[["Function","Region"],'
        '["Function","Region","Outcome"]],"Metrics":[{"Name":"Requests","Unit":"Count"},'
        '{"Name":"Latency","Unit":"Milliseconds"}]}]},'
        f'"Function":"{function}","Region":"{region}","Outcome":"{_outcome(status)}",'
        f'"Requests":1,"Latency":{latency_ms},"status":{status},"slug":{json.dumps(slug)},'
        f'"source":"{source}","request_id":{request_id}}}\n'
    )


def _outcome(status: int) -> str:
    if status in (301, 302, 307, 308):
        return "redirect"
    return {200: "ok", 404: "not-found", 410: "gone", 503: "unavailable"}.get(
        status, "rejected" if status < 500 else "error"
    )
