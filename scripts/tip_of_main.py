"""Refuse to deploy anything but the tip of main.

    python -m scripts.tip_of_main --stack prod

Run by every deploy and failover job before it changes a stack. It fails when
the run is for another branch (a `workflow_dispatch` from a feature branch) or
for a commit that is no longer main's newest (a re-run of an old run, or a run
that waited for an approval while newer commits landed): deploying that commit
would roll the stack back. The run for the newest commit deploys it.

Reads GITHUB_REF and GITHUB_SHA (the run's) and asks GitHub for main's tip
(scripts/github_api.py). Exit status: 0 the run is main's tip, 1 it is not
(or main's tip cannot be read: then nothing is deployed either), 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys

from scripts.github_api import ERRORS, GitHub, report_error

BRANCH = "main"


def refusal(github: GitHub, ref: str, sha: str, stack: str) -> str | None:
    """Why this run must not deploy `stack`, or None when it is main's tip."""
    if ref != f"refs/heads/{BRANCH}":
        return (
            f"this run is for {ref}, and {stack} is deployed from {BRANCH} only: "
            f"start the workflow from {BRANCH}"
        )
    tip = github.branch_sha(BRANCH)
    if tip is None:
        return f"GitHub reports no branch {BRANCH} in {github.repository}"
    if tip != sha:
        return (
            f"this run is for {sha[:12]}, but {BRANCH} is now at {tip[:12]}: deploying the "
            f"older commit would roll {stack} back. The run for {tip[:12]} deploys it "
            f"(or start the workflow again from {BRANCH})"
        )
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.tip_of_main", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--stack", required=True, help="the stack about to be changed")
    args = parser.parse_args(argv)
    ref, sha = os.environ.get("GITHUB_REF", ""), os.environ.get("GITHUB_SHA", "")
    try:
        if not ref or not sha:
            raise ValueError("set GITHUB_REF and GITHUB_SHA (GitHub Actions provides them)")
        github = GitHub.from_environment()
    except ValueError as exc:
        parser.error(str(exc))
    try:
        reason = refusal(github, ref, sha, args.stack)
    except ERRORS as exc:
        reason = f"cannot read the tip of {BRANCH} from GitHub ({exc}), so nothing is deployed"
    if reason:
        report_error(f"refusing to change {args.stack}: {reason}")
        return 1
    print(f"{sha[:12]} is the tip of {BRANCH}: deploying {args.stack}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
