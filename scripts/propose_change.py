"""Propose this checkout's version of one file as a pull request, idempotently.

    python -m scripts.propose_change --file Pulumi.prod.yaml \\
        --branch failover/prod-us-west-2 --message "..." --title "..." --body "..."

Used by the Failover workflow for the primaryRegion change. Every step
is skipped when already done, so a re-run after a partial failure resumes:
- main already has the file as it is here: nothing to propose;
- the branch (a stable name, not a run id) is created from main if missing;
- the file is committed to the branch only if the branch's copy differs (through
  GitHub's contents API: no git credentials in the job, and GitHub signs the commit);
- an open pull request from the branch is reused, otherwise one is opened.

GitHub settings come from the environment Actions provides (scripts/github_api.py).
Exit status: 0 proposed (or nothing to propose), 1 GitHub refused, 2 bad usage.
"""

from __future__ import annotations

import argparse
import base64
import sys
from pathlib import Path
from urllib.parse import quote

from scripts.github_api import ERRORS, GitHub, report_error


def file_at(github: GitHub, path: str, ref: str) -> tuple[bytes, str] | None:
    """(content, blob sha) of `path` on `ref`, or None if it has no such file."""
    found = github.find(f"/contents/{quote(path)}?ref={quote(ref, safe='')}")
    if found is None:
        return None
    return base64.b64decode(found["content"]), found["sha"]


def propose(github: GitHub, args, content: bytes) -> list[str]:
    """Bring the branch and its pull request to `content`; what was done, step by step."""
    done = []
    on_base = file_at(github, args.file, args.base)
    if on_base is not None and on_base[0] == content:
        return [f"{args.base} already has this {args.file}: nothing to propose"]
    if github.branch_sha(args.branch) is None:
        base_sha = github.branch_sha(args.base)
        if base_sha is None:
            raise ValueError(f"GitHub reports no branch {args.base}")
        github.call("POST", "/git/refs", {"ref": f"refs/heads/{args.branch}", "sha": base_sha})
        done.append(f"created branch {args.branch} from {args.base} ({base_sha[:12]})")
    on_branch = file_at(github, args.file, args.branch)
    if on_branch is not None and on_branch[0] == content:
        done.append(f"{args.branch} already has this {args.file}")
    else:
        update = {
            "message": args.message,
            "content": base64.b64encode(content).decode(),
            "branch": args.branch,
        }
        if on_branch is not None:
            update["sha"] = on_branch[1]
        commit = github.call("PUT", f"/contents/{quote(args.file)}", update)["commit"]
        done.append(f"committed {args.file} to {args.branch} ({commit['sha'][:12]})")
    owner = github.repository.split("/")[0]
    head = quote(f"{owner}:{args.branch}", safe="")
    open_prs = github.call("GET", f"/pulls?state=open&head={head}&base={quote(args.base)}")
    if open_prs:
        done.append(
            f"pull request #{open_prs[0]['number']} is already open: {open_prs[0]['html_url']}"
        )
    else:
        pr = github.call(
            "POST",
            "/pulls",
            {"title": args.title, "head": args.branch, "base": args.base, "body": args.body},
        )
        done.append(f"opened pull request #{pr['number']}: {pr['html_url']}")
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.propose_change", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--file",
        required=True,
        help="path from the repository root (the working directory), e.g. Pulumi.prod.yaml",
    )
    parser.add_argument("--branch", required=True, help="a stable name: re-runs reuse it")
    parser.add_argument("--base", default="main")
    parser.add_argument("--message", required=True, help="commit message")
    parser.add_argument("--title", required=True, help="pull request title")
    parser.add_argument("--body", default="", help="pull request description")
    args = parser.parse_args(argv)
    try:
        content = Path(args.file).read_bytes()
        github = GitHub.from_environment()
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    try:
        for step in propose(github, args, content):
            print(step)
    except ERRORS as exc:
        report_error(f"cannot propose {args.file} on {args.branch}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
