"""`make bench`: every suite, or the ones named (`python -m bench link_sync`).

Each suite prints its own tables and records its headline figures; the run ends
with them in one summary: the two stores side by side, then the two routers.
"""

import importlib
import sys
import time

from bench import summary

SUITES = [
    "link_sync",
    "redirect",
    "cold_start",
    "archive",
    "replication",
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
    began = time.perf_counter()
    for name in names or SUITES:
        started = time.perf_counter()
        print(f"\n== {name} ==")
        importlib.import_module(f"bench.{name}").run()
        print(f"({time.perf_counter() - started:.0f} s)")
    print(f"\n== summary ({time.perf_counter() - began:.0f} s in all) ==")
    print(summary.render())
    return 0


sys.exit(main(sys.argv[1:]))
