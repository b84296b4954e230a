"""The failover runbook (moving writes to another region), as a command: dry run by default.

    python -m scripts.datastore_failover promote --stack prod --to-region us-west-2 \\
        --stack-outputs outputs.json [--execute] [--timeout 1800]
    python -m scripts.datastore_failover check --stack prod --stack-outputs outputs.json
    python -m scripts.datastore_failover targets --preview preview.json --unreachable eu-west-1 \\
        [--state state.json]

The stack's `link_store` output says which store it runs on (absent: `elasticache`).

`promote`, with the ElastiCache Global Datastore:
1. promote the target region's member (`aws elasticache failover-global-replication-group`),
   unless AWS already reports it primary (a re-run after a later step failed, even
   after the failover's `pulumi up`: it resumes, and succeeds);
2. wait until AWS reports it primary;
3. set `golinks:primaryRegion` in Pulumi.<stack>.yaml, so the next `pulumi up` moves
   the sync function, publishing and the fallback pool (docs/deploy.md, runbook).
With the DynamoDB global table there is nothing to promote: every replica takes
writes, and who writes is the stack's choice (the sync function, its write access
and the index bucket's notification follow `primaryRegion`). So:
1. wait until AWS reports the table ACTIVE in the target region (`aws dynamodb
   describe-table`, asked there only: the old primary region may be down);
2. set `golinks:primaryRegion` as above.
Without --execute it prints exactly that and changes nothing.

`check` (run by every deploy before `pulumi up`, with the deploy role): the stack
file's primaryRegion must be the region AWS reports as the Datastore's primary now
(`aws elasticache describe-global-replication-groups`, not the stack outputs, which
change only with the failover's `pulumi up`). After a failover they differ until the
failover's pull request is merged, and deploying the old file would move writes back
to a read-only member. With DynamoDB the writer is wherever the stack put it, so the
file must name the region the stack runs with (its `primary_region` output): deploying
the old file would move the writer back to the region the failover left, maybe down.

`targets` (while the old primary region is down): from `pulumi preview --json`
of the re-pointed stack, print the URNs `pulumi up --target` must change, one
per line, leaving the unreachable region alone (components/failover_plan.py);
what is left for the first full `pulumi up` after the region is back goes to
stderr.

`outputs.json` is `pulumi stack output --json`. Exit status: 0 done, planned or
consistent; 1 the failover failed or timed out, the check found a mismatch or could
not ask AWS, or the targeted update cannot leave the region alone; 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from components.failover_plan import FailoverBlocked, failover_targets
from components.planning import resource_name, short_region

REPO = Path(__file__).resolve().parent.parent
PRIMARY_KEY = "golinks:primaryRegion"
PROMOTED = "PRIMARY/available"
#: A table (or replica) that takes reads and writes.
TABLE_READY = "ACTIVE"


def link_store(outputs: dict) -> str:
    """elasticache or dynamodb: what the deployed stack keeps its links in."""
    store = outputs.get("link_store", "elasticache")
    if store not in ("elasticache", "dynamodb"):
        raise ValueError(f"the stack output link_store is {store!r}: elasticache or dynamodb")
    return store


def plan(stack: str, outputs: dict, target: str) -> list[list[str]]:
    """The AWS CLI calls that promote `target` (none with DynamoDB); ValueError if that
    makes no sense."""
    regions = list(outputs["regions"])
    if target not in regions:
        raise ValueError(f"{target} is not one of the stack's regions {regions}")
    if link_store(outputs) == "dynamodb":
        if not outputs.get("link_table"):
            raise ValueError("the stack outputs of a dynamodb stack lack link_table")
        return []
    # No refusal when the stack already runs with `target`: a re-run after the failover's
    # `pulumi up` resumes, and AWS (asked first) says whether anything is left to promote.
    return [
        [
            "aws",
            "elasticache",
            "failover-global-replication-group",
            "--region",
            target,
            "--global-replication-group-id",
            outputs["global_datastore_id"],
            "--primary-region",
            target,
            "--primary-replication-group-id",
            resource_name(stack, short_region(target)),
        ]
    ]


def set_primary_region(stack_file: Path, region: str) -> str:
    """Rewrite the primaryRegion line (adding it if absent), keeping everything else as is."""
    text = stack_file.read_text()
    line = f"  {PRIMARY_KEY}: {region}"
    updated, found = re.subn(rf"^  {re.escape(PRIMARY_KEY)}:.*$", line, text, flags=re.M)
    if not found:
        updated = text.rstrip("\n") + f"\n{line}\n"
    stack_file.write_text(updated)
    return line.strip()


def configured_primary_region(stack_file: Path) -> str:
    """primaryRegion as `pulumi up` would read it: the stack file, else Pulumi.yaml's default."""
    configured = (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}
    if PRIMARY_KEY in configured:
        return str(configured[PRIMARY_KEY])
    project = yaml.safe_load((stack_file.parent / "Pulumi.yaml").read_text())
    return str(project["config"]["primaryRegion"]["default"])


def aws_primary_region(datastore_id: str, regions: list[str]) -> str:
    """The region AWS reports as the Datastore's primary, asking each member region in turn
    (one that is down does not stop the check); CalledProcessError if none answers."""
    failure: subprocess.CalledProcessError | None = None
    for region in regions:
        try:
            roles = member_roles(datastore_id, region)
        except subprocess.CalledProcessError as exc:
            failure = exc
            continue
        primaries = [member for member, role in roles.items() if role.startswith("PRIMARY/")]
        if len(primaries) == 1:
            return primaries[0]
        raise ValueError(f"AWS reports {len(primaries)} primary members: {roles}")
    assert failure is not None, "a stack has at least one region"
    raise failure


def member_roles(datastore_id: str, region: str) -> dict[str, str]:
    """Region -> role (PRIMARY/SECONDARY) and status, as AWS reports them now."""
    described = subprocess.run(
        [
            "aws",
            "elasticache",
            "describe-global-replication-groups",
            "--region",
            region,
            "--show-member-info",
            "--global-replication-group-id",
            datastore_id,
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    group = json.loads(described.stdout)["GlobalReplicationGroups"][0]
    return {m["ReplicationGroupRegion"]: f"{m['Role']}/{m['Status']}" for m in group["Members"]}


def table_status(table: str, region: str) -> str:
    """The link table's status in `region` (its replica there), as AWS reports it now."""
    described = subprocess.run(
        [
            "aws",
            "dynamodb",
            "describe-table",
            "--region",
            region,
            "--table-name",
            table,
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(described.stdout)["Table"]["TableStatus"]


def move_writer(args, outputs: dict, stack_file: Path) -> int:
    """DynamoDB: no promotion; the target's replica must be ready, then the file moves."""
    table, target = outputs["link_table"], args.to_region
    mode = "executing" if args.execute else "dry run, nothing changes"
    print(f"Failover of {args.stack}: {outputs['primary_region']} -> {target} ({mode})")
    print(f"  the link table {table} has no primary to promote: every replica takes writes")
    print(f"  wait until AWS reports the table {TABLE_READY} in {target}:")
    print(f"  $ aws dynamodb describe-table --region {target} --table-name {table}")
    print(
        f"  then set {PRIMARY_KEY}: {target} in {stack_file.name} and run `pulumi up`: the "
        "sync function, its write access and the index notification move there "
        "(targeted while the old primary region is down: docs/deploy.md)"
    )
    if not args.execute:
        return 0
    if shutil.which("aws") is None:
        print("error: the AWS CLI is not installed", file=sys.stderr)
        return 1
    try:
        ready = poll(
            lambda: table_status(table, target),
            lambda status: status == TABLE_READY,
            lambda status: f"{table} is {status} in {target}",
            args,
        )
        if not ready:
            print(
                f"error: {table} is not {TABLE_READY} in {target} after {args.timeout:.0f} s",
                file=sys.stderr,
            )
            return 1
    except (subprocess.CalledProcessError, ValueError, KeyError) as exc:
        detail = exc.stderr if isinstance(exc, subprocess.CalledProcessError) else exc
        print(
            f"error: cannot ask AWS for {table} in {target} ({detail}); its replica must "
            "take writes before the sync moves there",
            file=sys.stderr,
        )
        return 1
    changed = set_primary_region(stack_file, target)
    print(f"  {table} is {TABLE_READY} in {target}; {stack_file.name} now says {changed}")
    return 0


def poll(read, ready, describe, args) -> bool:
    """Call `read` every `args.interval` s until `ready` holds for its answer, printing what
    each other answer says; False once `args.timeout` s have passed."""
    deadline = time.monotonic() + args.timeout
    while not ready(answer := read()):
        print(f"  waiting: {describe(answer)}", flush=True)
        if time.monotonic() > deadline:
            return False
        time.sleep(args.interval)
    return True


def promote(args, outputs: dict, stack_file: Path) -> int:
    if link_store(outputs) == "dynamodb":
        return move_writer(args, outputs, stack_file)
    commands = args.commands
    mode = "executing" if args.execute else "dry run, nothing changes"
    print(f"Failover of {args.stack}: {outputs['primary_region']} -> {args.to_region} ({mode})")
    print(f"  unless AWS already reports {args.to_region} {PROMOTED}:")
    for command in commands:
        print("  $ " + " ".join(command))
    print(f"  then wait until AWS reports {args.to_region} {PROMOTED}")
    print(
        f"  then set {PRIMARY_KEY}: {args.to_region} in {stack_file.name} and run `pulumi up` "
        "(targeted while the old primary region is down: docs/deploy.md)"
    )
    if not args.execute:
        return 0
    if shutil.which("aws") is None:
        print("error: the AWS CLI is not installed", file=sys.stderr)
        return 1
    datastore = outputs["global_datastore_id"]
    try:
        if member_roles(datastore, args.to_region).get(args.to_region) == PROMOTED:
            print(f"  AWS already reports {args.to_region} {PROMOTED}: not promoting again")
        else:
            for command in commands:
                subprocess.run(command, check=True)
        promoted = poll(
            lambda: member_roles(datastore, args.to_region),
            lambda roles: roles.get(args.to_region) == PROMOTED,
            str,
            args,
        )
        if not promoted:
            print(
                f"error: {args.to_region} is not primary after {args.timeout:.0f} s",
                file=sys.stderr,
            )
            return 1
    except subprocess.CalledProcessError as exc:
        print(
            f"error: {' '.join(exc.cmd[:3])} failed ({exc.returncode}): {exc.stderr or ''}",
            file=sys.stderr,
        )
        return 1
    changed = set_primary_region(stack_file, args.to_region)
    print(f"  {args.to_region} is primary; {stack_file.name} now says {changed}")
    return 0


def check_writer(args, outputs: dict, stack_file: Path) -> int:
    """DynamoDB: the file must name the region the stack writes from now."""
    configured = configured_primary_region(stack_file)
    running = outputs.get("primary_region", configured)
    if running == configured:
        print(f"{args.stack}: the link table is written from {running}, as {stack_file.name} says")
        return 0
    print(
        f"error: {stack_file.name} says {PRIMARY_KEY}: {configured}, but {args.stack} writes "
        f"its link table from {running} (a failover moved the writer there). Deploying this "
        f"file would move the writer back to {configured}. Merge the failover's pull request "
        f"(it sets {PRIMARY_KEY}: {running}), or move the writer with the failover "
        "workflow, then deploy again.",
        file=sys.stderr,
    )
    return 1


def check(args, outputs: dict, stack_file: Path) -> int:
    if link_store(outputs) == "dynamodb":
        return check_writer(args, outputs, stack_file)
    configured = configured_primary_region(stack_file)
    datastore = outputs.get("global_datastore_id")
    if datastore is None:
        print(f"{args.stack} has no Datastore yet; {stack_file.name}: {configured}")
        return 0
    # AWS, not the stack outputs: those change only with the failover's own `pulumi up`,
    # and a deploy between the promotion and that update would undo the failover.
    regions = list(dict.fromkeys([configured, *outputs.get("regions", {})]))
    if shutil.which("aws") is None:
        print("error: the AWS CLI is not installed", file=sys.stderr)
        return 1
    try:
        primary = aws_primary_region(datastore, regions)
    except (subprocess.CalledProcessError, ValueError, KeyError, IndexError) as exc:
        detail = exc.stderr if isinstance(exc, subprocess.CalledProcessError) else exc
        print(
            f"error: cannot ask AWS which region is the primary of {datastore} ({detail}); "
            f"not deploying {args.stack} without knowing",
            file=sys.stderr,
        )
        return 1
    if primary == configured:
        print(f"{args.stack}: AWS reports primary region {primary}, as {stack_file.name} says")
        return 0
    print(
        f"error: {stack_file.name} says {PRIMARY_KEY}: {configured}, but AWS reports "
        f"{primary} as the primary of {datastore} (a Datastore failover moved it there). "
        f"Deploying this file would point the sync at a read-only member. Merge the "
        f"failover's pull request (it sets {PRIMARY_KEY}: {primary}), or fail back with the "
        "Failover workflow, then deploy again.",
        file=sys.stderr,
    )
    return 1


def targets(args) -> int:
    try:
        exported = json.loads(args.state.read_text()) if args.state else None
        plan = failover_targets(json.loads(args.preview.read_text()), args.unreachable, exported)
    except FailoverBlocked as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(plan.targets))
    print(
        f"{len(plan.targets)} targets; left for the first full `pulumi up` once "
        f"{', '.join(args.unreachable)} is back:",
        file=sys.stderr,
    )
    for op, urn in plan.deferred:
        print(f"  {op} {urn}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.datastore_failover", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, run, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--stack", required=True, choices=("dev", "staging", "prod"))
        sub.add_argument(
            "--stack-outputs",
            type=Path,
            required=True,
            help="`pulumi stack output --json` of the stack",
        )
        sub.add_argument("--stack-file", type=Path, help="default: Pulumi.<stack>.yaml here")
        sub.set_defaults(run=run)
        return sub

    promoting = command("promote", promote, "move writes to another region (dry run by default)")
    promoting.add_argument("--to-region", required=True)
    promoting.add_argument(
        "--execute", action="store_true", help="really fail over (default: dry run)"
    )
    promoting.add_argument("--timeout", type=float, default=1800)
    promoting.add_argument("--interval", type=float, default=15)
    command("check", check, "the stack file's primaryRegion is the one the stack runs with")
    targeting = commands.add_parser(
        "targets",
        help="the `pulumi up --target` URNs that leave unreachable regions alone",
        description="the `pulumi up --target` URNs that leave unreachable regions alone",
    )
    targeting.add_argument(
        "--preview", type=Path, required=True, help="`pulumi preview --json` of the stack"
    )
    targeting.add_argument(
        "--unreachable", action="append", required=True, metavar="REGION", help="repeatable"
    )
    targeting.add_argument(
        "--state", type=Path, help="`pulumi stack export` of the stack (provider regions)"
    )
    targeting.set_defaults(run=targets)
    args = parser.parse_args(argv)
    if args.run is targets:
        try:
            return targets(args)
        except (OSError, ValueError) as exc:  # missing or not JSON
            parser.error(str(exc))
    stack_file = args.stack_file or REPO / f"Pulumi.{args.stack}.yaml"
    try:
        outputs = json.loads(args.stack_outputs.read_text())
        link_store(outputs)
        if args.run is promote:
            args.commands = plan(args.stack, outputs, args.to_region)
        configured_primary_region(stack_file)
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
        parser.error(str(exc))
    return args.run(args, outputs, stack_file)


if __name__ == "__main__":
    sys.exit(main())
