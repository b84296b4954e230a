"""Wait until every region serves a link-index version, or fail with a per-region report.

    python -m scripts.wait_for_version --version 3f2a9c0d1e4b5a67 \\
        --url eu-west-1=https://eu-west-1.go.example.com/healthz --url us-west-2=... \\
        [--stack-outputs outputs.json] [--timeout 180] [--interval 2] [--header 'Name: value']

`--stack-outputs` reads the regions' health URLs from `pulumi stack output --json`.
Each region's /healthz is polled until it answers 200 with the version; a region
that is down, slow, answers 503 or garbage is reported, not fatal, until the
timeout. Exit status: 0 every region serves the version, 1 timeout, 2 bad usage.
Standard library only, so it runs on any CI runner or laptop.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass
class RegionState:
    region: str
    url: str
    http_status: int | None = None
    status: str | None = None
    version: str | None = None
    error: str | None = None
    answered_at: float | None = None
    reached_after: float | None = None


def fetch(url: str, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
    """GET `url`: (HTTP status, body), error statuses included."""
    # URLs are checked to be http(s) when parsed (main), so no file: or custom schemes.
    request = urllib.request.Request(url, headers={"Accept": "application/json", **headers})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def probe(state: RegionState, headers: dict[str, str], timeout: float) -> None:
    """One GET of the region's /healthz, recorded in `state`; never raises for a bad answer."""
    try:
        state.http_status, body = fetch(state.url, headers, timeout)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        # Refused, reset, timed out, or not HTTP at all (a bad status line, a cut body).
        reason = getattr(exc, "reason", exc)
        state.http_status, state.error = None, str(reason) or type(reason).__name__
        return
    state.answered_at = time.time()
    try:
        health = json.loads(body)
        state.status, state.version = _text(health.get("status")), _text(health.get("version"))
        state.error = None
    except (ValueError, AttributeError):
        state.status, state.version = None, None
        state.error = f"HTTP {state.http_status}: not the health JSON"
        return
    if state.http_status != 200:
        state.error = f"HTTP {state.http_status}"


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def wait(
    version: str,
    urls: dict[str, str],
    *,
    timeout: float,
    interval: float,
    headers: dict[str, str] | None = None,
    out=sys.stdout,
) -> list[RegionState]:
    """Poll every region until all serve `version` or `timeout` passes; returns the states."""
    states = [RegionState(region, url) for region, url in urls.items()]
    started = time.monotonic()
    deadline = started + timeout
    while True:
        pending = [s for s in states if s.reached_after is None]
        threads = [
            threading.Thread(
                target=probe, args=(s, headers or {}, max(1.0, min(5.0, interval * 2)))
            )
            for s in pending
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for state in pending:
            if state.http_status == 200 and state.version == version:
                state.reached_after = time.monotonic() - started
                print(
                    f"{state.region}: serving {version} after {state.reached_after:.1f} s",
                    file=out,
                    flush=True,
                )
        if all(s.reached_after is not None for s in states) or time.monotonic() >= deadline:
            return states
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def report(states: list[RegionState], version: str) -> str:
    rows = [["region", "result", "HTTP", "status", "version seen", "last answer", "error"]]
    for s in states:
        answered = (
            datetime.fromtimestamp(s.answered_at, UTC).strftime("%H:%M:%SZ")
            if s.answered_at
            else "never"
        )
        result = (
            f"ok after {s.reached_after:.1f} s" if s.reached_after is not None else "NOT SERVING"
        )
        rows.append(
            [
                s.region,
                result,
                str(s.http_status or "-"),
                s.status or "-",
                s.version or "-",
                answered,
                s.error or "",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return f"waiting for link index {version}:\n" + "\n".join(lines)


def parse_headers(items: list[str]) -> dict[str, str]:
    headers = {}
    for item in items:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"--header takes 'Name: value', got {item!r}")
        headers[name.strip()] = value.strip()
    return headers


def urls_from_stack_outputs(path: Path) -> dict[str, str]:
    outputs = json.loads(path.read_text())
    return {region: facts["healthz_url"] for region, facts in outputs["regions"].items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.wait_for_version", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--version", required=True, help="link index version to wait for")
    parser.add_argument(
        "--url",
        action="append",
        default=[],
        metavar="REGION=URL",
        help="a region's /healthz URL (repeatable)",
    )
    parser.add_argument("--stack-outputs", type=Path, help="`pulumi stack output --json` file")
    parser.add_argument("--timeout", type=float, default=180, help="seconds (default 180)")
    parser.add_argument("--interval", type=float, default=2, help="seconds between polls")
    parser.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'")
    args = parser.parse_args(argv)
    try:
        urls = urls_from_stack_outputs(args.stack_outputs) if args.stack_outputs else {}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        parser.error(f"--stack-outputs: cannot read region health URLs: {exc}")
    for item in args.url:
        region, sep, url = item.partition("=")
        if not sep or not url.startswith(("http://", "https://")):
            parser.error(f"--url takes REGION=http(s)://..., got {item!r}")
        urls[region] = url
    if not urls:
        parser.error("give --url REGION=URL (one per region) or --stack-outputs FILE")
    try:
        headers = parse_headers(args.header)
    except ValueError as exc:
        parser.error(str(exc))
    states = wait(args.version, urls, timeout=args.timeout, interval=args.interval, headers=headers)
    print(report(states, args.version))
    return 0 if all(s.reached_after is not None for s in states) else 1


if __name__ == "__main__":
    sys.exit(main())
