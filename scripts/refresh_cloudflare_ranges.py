"""Refresh components/cloudflare_ranges.json from Cloudflare's published address lists.

    python -m scripts.refresh_cloudflare_ranges [--base-url https://www.cloudflare.com]
        [--out components/cloudflare_ranges.json] [--timeout 10]

Downloads <base-url>/ips-v4 and <base-url>/ips-v6, validates every line as a
network of the right family, and rewrites the file sorted (so the diff shows
exactly what Cloudflare added or dropped). Nothing is written unless both lists
are valid. Exit status: 0 written or unchanged, 1 download or validation failed.
Commit the change and deploy: the WAF's Cloudflare IP sets are built from the file.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request
from pathlib import Path

from components.cloudflare_ranges import DATA, SOURCE, parse_lists


def _download(url: str, timeout: float) -> str:
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"{url}: only http(s) URLs are fetched")
    request = urllib.request.Request(url, headers={"User-Agent": "golinks-refresh-ranges"})  # noqa: S310 - scheme checked above
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked above
        return response.read().decode("utf-8")


def refresh(base_url: str, out: Path, timeout: float) -> bool:
    """Rewrite `out` from the lists under `base_url`; True when its content changed."""
    base = base_url.rstrip("/")
    texts = [_download(f"{base}/ips-v{family}", timeout) for family in (4, 6)]
    ranges = parse_lists(*texts, where=f"{base}/")
    text = ranges.to_json()
    if out.is_file() and out.read_text() == text:
        return False
    out.write_text(text)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default=SOURCE)
    parser.add_argument("--out", type=Path, default=DATA)
    parser.add_argument("--timeout", type=float, default=10)
    args = parser.parse_args(argv)
    try:
        changed = refresh(args.base_url, args.out, args.timeout)
    except (OSError, urllib.error.URLError, UnicodeDecodeError, ValueError) as failed:
        print(f"refresh_cloudflare_ranges: {failed}; {args.out} left as it was", file=sys.stderr)
        return 1
    print(f"{args.out}: {'updated, review and commit the diff' if changed else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
