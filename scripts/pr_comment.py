"""Create or update this workflow's comment on a pull request (one comment, edited in place).

    python -m scripts.pr_comment --pr 42 --body-file link-diff.md

The comment is recognised by its first line, a hidden marker (`<!-- ... -->`)
that the body must start with, and by its author: only the workflow's own
comments are edited (anyone can paste a marker into a comment of their own).
GitHub settings come from the environment Actions provides (scripts/github_api.py).
Standard library only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scripts.github_api import ERRORS, GitHub

MAX_BODY = 65_000  # GitHub refuses comments over 65,536 characters
WORKFLOW_AUTHOR = "github-actions[bot]"  # who comments with a workflow's GITHUB_TOKEN


def upsert(github: GitHub, pr: int, body: str, author: str = WORKFLOW_AUTHOR) -> str:
    """Edit `author`'s comment starting with the body's marker line, or add one; says which."""
    marker = body.splitlines()[0]
    page = 1
    while comments := github.call("GET", f"/issues/{pr}/comments?per_page=100&page={page}"):
        for comment in comments:
            mine = (comment.get("user") or {}).get("login") == author
            if mine and (comment.get("body") or "").startswith(marker):
                github.call("PATCH", f"/issues/comments/{comment['id']}", {"body": body})
                return f"updated comment {comment['id']}"
        page += 1
    created = github.call("POST", f"/issues/{pr}/comments", {"body": body})
    return f"created comment {created['id']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.pr_comment", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--pr", type=int, required=True, help="pull request number")
    parser.add_argument("--body-file", type=Path, required=True)
    parser.add_argument(
        "--author",
        default=WORKFLOW_AUTHOR,
        help=f"login whose comment is edited (default: {WORKFLOW_AUTHOR})",
    )
    args = parser.parse_args(argv)
    try:
        body = args.body_file.read_text()
    except OSError as exc:
        parser.error(f"--body-file: {exc}")
    if not body.startswith("<!--") or "-->" not in body.splitlines()[0]:
        parser.error("the body must start with a hidden marker line: <!-- ... -->")
    if len(body) > MAX_BODY:
        body = body[:MAX_BODY] + "\n\n… (truncated; see the job log for the rest)"
    try:
        github = GitHub.from_environment()
    except ValueError as exc:
        parser.error(str(exc))
    try:
        print(upsert(github, args.pr, body, args.author))
    except ERRORS as exc:
        print(f"error: cannot comment on pull request {args.pr}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
