"""`make dev`: the whole multi-region topology on this machine.

python -m local [--scale 1.0] [--port 8080] [--interval 1.0]   run it (Ctrl-C stops)
python -m local publish                                       re-publish links/ to it
python -m local status                                        what each region serves
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import sys
from pathlib import Path

import requests

from functions.links.source import LinkErrors
from local.edge import ORIGIN_VERIFY_HEADER
from local.servers import ServerError
from local.stack import Endpoints, LocalStack, PublishFailed
from local.topology import Topology
from scripts import publish_links

REPO = Path(__file__).resolve().parent.parent
STATE = REPO / ".local-stack"
LOCK = REPO / ".local-stack.lock"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__.split("\n")[0])
    parser.add_argument("command", nargs="?", default="run", choices=("run", "publish", "status"))
    parser.add_argument("--scale", type=float, default=1.0, help="shrink every delay (0-1]")
    parser.add_argument("--port", type=int, default=8080, help="edge port (default 8080)")
    parser.add_argument("--interval", type=float, default=1.0, help="monitor interval, s")
    args = parser.parse_args(argv)
    try:
        if args.command == "publish":
            return publish()
        if args.command == "status":
            return status()
        return run(args)
    except LinkErrors as exc:
        print(exc, file=sys.stderr)
        return 1
    except (PublishFailed, ServerError, OSError, requests.RequestException) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def run(args) -> int:
    lock = LOCK.open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(
            "The local stack is already running (another `make dev`); stop it with Ctrl-C "
            "there, or use `python -m local publish` / `status` against it."
        )
        return 1
    signal.signal(signal.SIGTERM, _interrupt)
    stack = LocalStack(
        STATE,
        topology=Topology(scale=args.scale),
        monitor_interval=args.interval,
        edge_port=args.port,
    )
    print("Starting the local stack (Redis primary + a replica per region, S3, functions, edge)")
    try:
        with stack:
            print_welcome(stack)
            signal.pause()
    except KeyboardInterrupt:
        pass
    print("\nStopped every process the local stack started.")
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def print_welcome(stack: LocalStack) -> None:
    topology, edge = stack.topology, stack.endpoints.edge_url
    print(
        f"\nUp: {len(topology.regions)} regions, primary {topology.primary}, links version "
        f"{stack.version}; delays x{topology.scale}\n"
    )
    print(f"  edge (Cloudflare + CloudFront)  {edge}")
    print(f"  edge status                     {edge}/_edge/status")
    for region in topology.regions:
        print(
            f"  {region:<15} api {stack.hosts[region].url}  redis {stack.replicas[region].url}"
            f"  ({topology.rtt_ms(topology.primary, region):.0f} ms from {topology.primary})"
        )
    print(f"  redis primary (writer)          {stack.primary.url}")
    print("\nTry:")
    print(f"  curl -i {edge}/docs")
    print(f"  curl -i -H 'X-Client-Region: ap-southeast-1' {edge}/gh")
    print(f"  curl -s {edge}/_edge/status | python3 -m json.tool")
    print("Edit links/ and publish to every region:  make publish   (python -m local publish)")
    print("Ctrl-C stops everything.", flush=True)


def publish() -> int:
    """What CI's publish job does, against the running local stack."""
    endpoints = _running()
    os.environ.update(endpoints.publisher_env())
    return publish_links.main(
        [
            str(REPO / "links"),
            "--stack-outputs",
            str(STATE / "stack-outputs.json"),
            "--header",
            f"{ORIGIN_VERIFY_HEADER}: {endpoints.origin_verify}",  # CloudFront adds it
            "--timeout",
            "30",
            "--interval",
            "0.1",
        ]
    )


def status() -> int:
    endpoints = _running()
    status = requests.get(f"{endpoints.edge_url}/_edge/status", timeout=5).json()
    print(json.dumps(status, indent=2))
    return 0


def _running() -> Endpoints:
    state = STATE / "state.json"
    lock = LOCK.open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return Endpoints.load(state)  # held: a stack is running
    raise OSError("the local stack is not running; start it with `make dev`")


if __name__ == "__main__":
    sys.exit(main())
