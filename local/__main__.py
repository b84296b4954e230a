"""`make dev`: validate links/, start a real local Redis, publish the links into it.

Runs until Ctrl-C, then stops every process it started.
"""

from __future__ import annotations

import fcntl
import signal
import sys
from pathlib import Path

from functions.links.index import build_index
from functions.links.redis_sync import sync_index
from functions.links.source import LinkErrors, load_links
from local.servers import RedisServer, ServerError

REPO = Path(__file__).resolve().parent.parent
STATE = REPO / ".local-stack"


def main() -> int:
    STATE.mkdir(exist_ok=True)
    lock = (STATE / "lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("make dev is already running in another terminal; stop it with Ctrl-C there first.")
        return 1
    try:
        index = build_index(load_links([REPO / "links"]))
    except LinkErrors as exc:
        print(exc, file=sys.stderr)
        return 1
    redis = RedisServer(STATE / "redis", name="redis")
    try:
        redis.start()
        report = sync_index(redis.client(), index)
        print(f"links: {index.count} links, version {index.version}")
        print(f"redis: {redis.url} ({len(report.plan.added)} links written)")
        print(f"  try: redis-cli -p {redis.port} GET link:docs")
        print("Ctrl-C stops it.")
        stop_signals = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
        signal.sigwait(stop_signals)
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        redis.stop()
    return 0


sys.exit(main())
