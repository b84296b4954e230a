"""`make dev`: the whole multi-region topology on this machine.

python -m local [--store elasticache|dynamodb] [--router cloudflare|route53]
                [--scale 1.0] [--port 8080] [--interval 1.0]  run it (Ctrl-C stops)
python -m local publish                                       re-publish links/ to it
python -m local status                                        what each region serves
python -m local region down|up REGION                         take a region out, bring it back
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import sys
from pathlib import Path

import requests

from functions.links.source import LinkErrors
from local.control import ACTIONS, ControlServer, request_region, status_report
from local.edge import ORIGIN_VERIFY_HEADER
from local.servers import Process, ServerError
from local.stack import ROUTERS, STORES, Endpoints, LocalStack, PublishFailed
from local.topology import REGIONS, Topology
from scripts import publish_links

REPO = Path(__file__).resolve().parent.parent
STATE = REPO / ".local-stack"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n")[1],
    )
    parser.add_argument(
        "command", nargs="?", default="run", choices=("run", "publish", "status", "region")
    )
    parser.add_argument("action", nargs="?", choices=ACTIONS, help="region: down or up")
    parser.add_argument("region", nargs="?", choices=REGIONS, help="region: which one")
    parser.add_argument("--scale", type=float, default=1.0, help="shrink every delay (0-1]")
    parser.add_argument("--port", type=int, default=8080, help="edge port (default 8080)")
    parser.add_argument(
        "--interval", type=float, default=1.0, help="monitor (or health check) interval, s"
    )
    parser.add_argument(
        "--router",
        choices=ROUTERS,
        default="cloudflare",
        help="traffic router the edge emulates: cloudflare (default) or route53",
    )
    parser.add_argument(
        "--store",
        choices=STORES,
        default="elasticache",
        help="link store (linkStore): elasticache (Redis, default) or dynamodb",
    )
    parser.add_argument(
        "--state-dir", type=Path, default=STATE, help="the running stack's files (.local-stack)"
    )
    args = parser.parse_args(argv)
    if (args.command == "region") != bool(args.action and args.region):
        parser.error("use `region down|up REGION`; only `region` takes an action and a region")
    try:
        if args.command == "publish":
            return publish(args.state_dir)
        if args.command == "status":
            return status(args.state_dir)
        if args.command == "region":
            return region(args.state_dir, args.action, args.region)
        return run(args)
    except LinkErrors as exc:
        print(exc, file=sys.stderr)
        return 1
    except (PublishFailed, ServerError, OSError, requests.RequestException) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def run(args) -> int:
    args.state_dir.parent.mkdir(parents=True, exist_ok=True)
    lock = _lock_path(args.state_dir).open("w")
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
        args.state_dir,
        topology=Topology(scale=args.scale),
        monitor_interval=args.interval,
        edge_port=args.port,
        router=args.router,
        store=args.store,
    )
    store = (
        "a DynamoDB table replica per region"
        if args.store == "dynamodb"
        else "Redis primary + a replica per region"
    )
    print(f"Starting the local stack ({store}, S3, functions, edge)")
    try:
        with stack:
            if stack.leftovers_stopped:
                print(f"Stopped what an earlier run left: {', '.join(stack.leftovers_stopped)}")
            control = stack.run(ControlServer(stack).start())
            stack.endpoints.control_url = control.url
            stack.endpoints.save(stack.state_dir)
            print_welcome(stack)
            try:
                while True:  # the main thread starts every process, and watches them
                    control.serve_one(timeout=0.5)
                    for process in stack.unexpected_exits():
                        print(exit_report(stack, process), flush=True)
            finally:
                stack.run(control.stop())
    except KeyboardInterrupt:
        pass
    print("\nStopped every process the local stack started.")
    return 0


def exit_report(stack: LocalStack, process: Process) -> str:
    """One line for a child that died on its own."""
    code = process.proc.returncode
    how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
    for region, host in stack.hosts.items():
        if host is process:
            return (
                f"{region}: its functions process (pid {process.proc.pid}) died ({how}); the "
                f"edge takes it out of rotation. Bring it back: python -m local region up {region}"
            )
    return f"{process.name} (pid {process.proc.pid}) died ({how}); its log: {process.log_path}"


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
        store = (
            f"dynamodb {stack.dynamodb.endpoint(region)}"
            if stack.dynamodb
            else f"redis {stack.replicas[region].url}"
        )
        print(
            f"  {region:<15} api {stack.hosts[region].url}  {store}"
            f"  ({topology.rtt_ms(topology.primary, region):.0f} ms from {topology.primary})"
        )
    if stack.primary:
        print(f"  redis primary (writer)          {stack.primary.url}")
    else:
        print(f"  table {stack.dynamodb.table}, written in {topology.primary}")
    print("\nTry:")
    print(f"  curl -i {edge}/docs")
    print(f"  curl -i -H 'X-Client-Region: ap-southeast-1' {edge}/gh")
    print(f"  curl -i {edge}/jira/ABC-123        (a templated link)")
    print(f"  curl -s {edge}/gh+                 (a link's details)")
    print(f"  open {edge}/_links                 (every link, searchable; /_links.json)")
    print(f"  curl -s {edge}/_edge/status | python3 -m json.tool")
    print("Edit links/ and publish to every region:  make publish   (python -m local publish)")
    print("Ctrl-C stops everything.", flush=True)


def publish(state_dir: Path) -> int:
    """What CI's publish job does, against the running local stack."""
    endpoints = _running(state_dir)
    os.environ.update(endpoints.publisher_env())
    return publish_links.main(
        [
            str(REPO / "links"),
            "--stack-outputs",
            str(state_dir / "stack-outputs.json"),
            "--header",
            f"{ORIGIN_VERIFY_HEADER}: {endpoints.origin_verify}",  # CloudFront adds it
            "--timeout",
            "30",
            "--interval",
            "0.1",
        ]
    )


def status(state_dir: Path) -> int:
    """A table of what each region serves; exit status 1 when any region is unhealthy."""
    table, healthy = status_report(_running(state_dir))
    print(table)
    return 0 if healthy else 1


def region(state_dir: Path, action: str, name: str) -> int:
    print(f"Taking {name} down..." if action == "down" else f"Bringing {name} up...", flush=True)
    ok, message = request_region(_running(state_dir), action, name)
    print(message if ok else f"error: {message}", file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def _lock_path(state_dir: Path) -> Path:
    return state_dir.parent / f"{state_dir.name}.lock"


def _running(state_dir: Path) -> Endpoints:
    if not state_dir.parent.is_dir():
        raise OSError("the local stack is not running; start it with `make dev`")
    lock = _lock_path(state_dir).open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return Endpoints.load(state_dir / "state.json")  # held: a stack is running
    raise OSError("the local stack is not running; start it with `make dev`")


if __name__ == "__main__":
    sys.exit(main())
