"""The few GitHub REST calls the delivery scripts make (standard library only).

Settings come from what GitHub Actions provides: GITHUB_TOKEN, GITHUB_REPOSITORY,
GITHUB_API_URL (http:// only for a stand-in on this machine).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request

#: What a failed call raises: an HTTP error, an unreachable host, a bad answer.
ERRORS = (urllib.error.URLError, OSError, ValueError)


class GitHub:
    def __init__(self, api_url: str, repository: str, token: str):
        if not api_url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ValueError(f"GITHUB_API_URL must be https://, got {api_url!r}")
        self.base = f"{api_url.rstrip('/')}/repos/{repository}"
        self.repository = repository
        self.token = token

    @classmethod
    def from_environment(cls) -> GitHub:
        """The repository of the running workflow; ValueError naming what is missing."""
        missing = [
            name for name in ("GITHUB_TOKEN", "GITHUB_REPOSITORY") if not os.environ.get(name)
        ]
        if missing:
            raise ValueError(f"set {', '.join(missing)} (GitHub Actions provides them)")
        return cls(
            os.environ.get("GITHUB_API_URL", "https://api.github.com"),
            os.environ["GITHUB_REPOSITORY"],
            os.environ["GITHUB_TOKEN"],
        )

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

    def find(self, path: str):
        """GET `path`, or None when GitHub answers 404 (no such branch, file, ...)."""
        try:
            return self.call("GET", path)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def branch_sha(self, branch: str) -> str | None:
        ref = self.find(f"/git/ref/heads/{branch}")
        return ref["object"]["sha"] if ref else None


def report_error(message: str) -> None:
    """`error: ...` on stderr, and the same as an annotation on the run's summary page."""
    print(f"::error::{message}", flush=True)  # the runner reads workflow commands on stdout
    print(f"error: {message}", file=sys.stderr, flush=True)
