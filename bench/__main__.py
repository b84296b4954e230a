"""`make bench`: every suite, or the ones named (`python -m bench link_sync`)."""

import importlib
import sys
import time

SUITES = [
    "link_sync",
    "redirect",
    "cold_start",
    "archive",
    "global_latency",
    "router_failover",
    "dynamo_store",
    "publish_seen",
]


def main(names: list[str]) -> int:
    unknown = set(names) - set(SUITES)
    if unknown:
        print(f"unknown suite(s): {', '.join(sorted(unknown))}; known: {', '.join(SUITES)}")
        return 2
    for name in names or SUITES:
        started = time.perf_counter()
        print(f"\n== {name} ==")
        importlib.import_module(f"bench.{name}").run()
        print(f"({time.perf_counter() - started:.0f} s)")
    return 0


sys.exit(main(sys.argv[1:]))
