"""Create or update this workflow's comment on a pull request (one comment, edited in place).

    python -m scripts.pr_comment --pr 42 --body-file link-diff.md

The comment is recognised by its first line, a hidden marker (`<!-- ... -->`)
that the body must start with, and by its author: only the workflow's own
comments are edited (anyone can paste a marker into a comment of their own).
GitHub settings come from the environment
Actions provides: GITHUB_TOKEN, GITHUB_REPOSITORY, GITHUB_API_URL. Standard
library only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

MAX_BODY = 65_000  # GitHub refuses comments over 65,536 characters
WORKFLOW_AUTHOR = "github-actions[bot]"  # who comments with a workflow's GITHUB_TOKEN


class GitHub:
    def __init__(self, api_url: str, repository: str, token: str):
        if not api_url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ValueError(f"GITHUB_API_URL must be https://, got {api_url!r}")
        self.base = f"{api_url.rstrip('/')}/repos/{repository}"
        self.token = token

    def call(self, method: str, path: str, body: dict | None = None):
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
            f"{self.base}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.loads(response.read() or b"null")


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
    body = args.body_file.read_text()
    if not body.startswith("<!--") or "-->" not in body.splitlines()[0]:
        parser.error("the body must start with a hidden marker line: <!-- ... -->")
    if len(body) > MAX_BODY:
        body = body[:MAX_BODY] + "\n\n… (truncated; see the job log for the rest)"
    missing = [name for name in ("GITHUB_TOKEN", "GITHUB_REPOSITORY") if not os.environ.get(name)]
    if missing:
        parser.error(f"set {', '.join(missing)} (GitHub Actions provides them)")
    github = GitHub(
        os.environ.get("GITHUB_API_URL", "https://api.github.com"),
        os.environ["GITHUB_REPOSITORY"],
        os.environ["GITHUB_TOKEN"],
    )
    try:
        print(upsert(github, args.pr, body, args.author))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"error: cannot comment on pull request {args.pr}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
