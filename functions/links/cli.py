"""`python -m functions.links validate|build|diff|sync [PATH...]`.

Exit status: 0 success, 1 the links are invalid, 2 bad usage, 3 Redis or S3
failed (nothing half-applied: see redis_sync).

redis-py and boto3 are imported by the commands that use them, so `validate`
(run on every save and in every `pulumi preview`) stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .index import Index, LinkDiff, build_index, diff_indexes
from .source import LinkErrors, load_links

EXIT_INVALID = 1
EXIT_FAILED = 3
DEFAULT_PATHS = ("links",)


class Failed(Exception):
    """An operational failure with a message for the user (exit 3)."""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        index = build_index(load_links(args.paths or DEFAULT_PATHS))
        return args.run(args, index)
    except LinkErrors as exc:
        print(exc, file=sys.stderr)
        if getattr(args, "format", None) == "markdown":
            print(render_markdown_errors(exc, args.label))
        return EXIT_INVALID
    except Failed as exc:
        print(f"error: {exc}", file=sys.stderr)
        if getattr(args, "format", None) == "markdown":
            print(render_markdown_failure(exc, args.label))
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted: Redis still serves its previous index whole", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m functions.links",
        description="Validate, build and publish the link set (links/*.yaml).",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, run, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "paths", nargs="*", metavar="PATH", help="link files or directories (default: links/)"
        )
        sub.set_defaults(run=run)
        return sub

    command("validate", _validate, "report every problem in the link files")
    build = command("build", _build, "write the canonical index")
    build.add_argument("--out", required=True, help="index file to write ('-' for stdout)")
    diff = command("diff", _diff, "show what publishing would change (in Redis, or in S3)")
    against = diff.add_mutually_exclusive_group(required=True)
    against.add_argument("--redis-url", help="compare with what this Redis primary serves")
    against.add_argument("--against-s3", metavar="S3_URI", help="compare with the published index")
    diff.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    diff.add_argument("--label", help="name of the environment, for the markdown heading")
    sync = command("sync", _sync, "publish the index to S3 and/or apply it to Redis")
    sync.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL"),
        help="Redis primary, e.g. redis://127.0.0.1:6379/0 (default: $REDIS_URL)",
    )
    sync.add_argument("--s3-uri", help="s3://bucket/key of the index object")
    return parser


def _validate(args, index: Index) -> int:
    print(f"ok: {index.count} links, version {index.version}")
    return 0


def _build(args, index: Index) -> int:
    data = index.to_bytes()
    if args.out == "-":
        sys.stdout.buffer.write(data)
    else:
        _write_atomically(Path(args.out), data)
        print(f"wrote {args.out}: {index.count} links, version {index.version}", file=sys.stderr)
    return 0


def _diff(args, index: Index) -> int:
    if args.against_s3:
        diff = diff_indexes(_published_index(args.against_s3), index)
        source = f"S3 {args.against_s3}"
    else:
        from .redis_sync import plan_sync

        diff = _with_redis(args.redis_url, lambda client: plan_sync(client, index)).as_diff()
        source = f"Redis {_redact(args.redis_url)}"
    render = {"text": render_text, "json": render_json, "markdown": render_markdown}[args.format]
    print(render(diff, source=source, label=args.label))
    return 0


def _published_index(uri: str) -> Index | None:
    from botocore.exceptions import BotoCoreError, ClientError

    from .s3 import S3Location, get_index

    try:
        return get_index(S3Location.parse(uri))
    except ValueError as exc:  # a bad URI, or an invalid published index
        raise Failed(str(exc)) from None
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None  # nothing published yet: every link is new
        raise Failed(f"S3 {uri}: {exc}") from None
    except BotoCoreError as exc:
        raise Failed(f"S3 {uri}: {exc}") from None


def render_text(diff: LinkDiff, *, source: str, label: str | None) -> str:
    lines = [f"+ {link.slug} -> {link.url}" for link in diff.added]
    lines += [f"~ {after.slug} -> {after.url}" for _, after in diff.changed]
    lines += [f"- {slug}" for slug in diff.removed]
    lines.append(
        f"{len(diff.added)} added, {len(diff.changed)} changed, {len(diff.removed)} removed; "
        f"{source} serves {diff.previous_version or 'nothing'}, the links build {diff.version}"
    )
    return "\n".join(lines)


def render_json(diff: LinkDiff, *, source: str, label: str | None) -> str:
    return json.dumps(
        {
            "label": label,
            "source": source,
            "version": diff.version,
            "previous_version": diff.previous_version,
            "added": [link.slug for link in diff.added],
            "changed": [after.slug for _, after in diff.changed],
            "removed": list(diff.removed),
        },
        indent=2,
    )


def markdown_marker(label: str | None) -> str:
    """Hidden first line of the comment, so CI finds and updates its own comment."""
    return f"<!-- golinks:link-diff:{label or 'links'} -->"


def render_markdown(diff: LinkDiff, *, source: str, label: str | None) -> str:
    """A pull-request comment: what publishing this branch's links would change."""
    title = f"Link changes{f' for {label}' if label else ''}"
    lines = [markdown_marker(label), f"### {title}", ""]
    lines.append(
        f"Published: `{diff.previous_version or 'nothing yet'}` → this branch: `{diff.version}` "
        f"({len(diff.added)} added, {len(diff.changed)} changed, {len(diff.removed)} removed)"
    )
    if diff.is_empty:
        return "\n".join([*lines, "", "No link changes."])
    lines += ["", "| | slug | target | status |", "|---|---|---|---|"]
    for link in diff.added:
        lines.append(f"| added | `{_md(link.slug)}` | {_md(link.url)} | {link.status} |")
    for before, after in diff.changed:
        target = (
            _md(after.url)
            if before is None or before.url == after.url
            else (f"~~{_md(before.url)}~~ → {_md(after.url)}")
        )
        lines.append(f"| changed | `{_md(after.slug)}` | {target} | {after.status} |")
    for slug in diff.removed:
        lines.append(f"| removed | `{_md(slug)}` | | |")
    return "\n".join(lines)


def render_markdown_errors(errors: LinkErrors, label: str | None) -> str:
    title = f"Link changes{f' for {label}' if label else ''}"
    # A fenced block shows the problems verbatim; only a fence inside could end it early.
    fence = "`" * 3
    problems = "\n".join(str(problem).replace(fence, "'" * 3) for problem in errors.problems)
    return (
        f"{markdown_marker(label)}\n### {title}\n\n**The links are invalid; nothing can be "
        f"published until these are fixed:**\n\n{fence}text\n{problems}\n{fence}"
    )


def render_markdown_failure(failure: Failed, label: str | None) -> str:
    """The comment when the comparison itself failed (S3 unreachable, access denied, ...)."""
    title = f"Link changes{f' for {label}' if label else ''}"
    fence = "`" * 3
    return (
        f"{markdown_marker(label)}\n### {title}\n\n**Cannot compare with the published "
        f"links:**\n\n{fence}text\n{str(failure).replace(fence, chr(39) * 3)}\n{fence}"
    )


def _md(text: str) -> str:
    """Inert in a table cell: no pipes, backticks, angle brackets or line breaks."""
    return (
        text.replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("`", "\\`")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\n", " ")
    )


def _sync(args, index: Index) -> int:
    if not args.redis_url and not args.s3_uri:
        raise Failed("sync needs --redis-url (or $REDIS_URL), --s3-uri, or both")
    if args.s3_uri:
        _publish_to_s3(args.s3_uri, index)
    if args.redis_url:
        from .redis_sync import sync_index

        with _progress() as progress:
            report = _with_redis(
                args.redis_url, lambda client: sync_index(client, index, progress=progress)
            )
        plan = report.plan
        what = "applied" if report.applied else "already up to date"
        print(
            f"redis {_redact(args.redis_url)}: {what}, version {plan.version} "
            f"({plan.count} links; {len(plan.added)} added, {len(plan.changed)} changed, "
            f"{len(plan.removed)} removed, {plan.written_keys} keys written, "
            f"{report.seconds:.2f} s; was {plan.previous_version or 'empty'})"
        )
    return 0


def _publish_to_s3(uri: str, index: Index) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    from .s3 import S3Location, put_index

    try:
        location = S3Location.parse(uri)
    except ValueError as exc:
        raise Failed(str(exc)) from None
    try:
        result = put_index(location, index)
    except (BotoCoreError, ClientError) as exc:
        raise Failed(f"S3 {location}: {exc}") from None
    was = (
        "unchanged"
        if result.previous_version == index.version
        else (f"was {result.previous_version or 'empty'}")
    )
    print(
        f"s3 {location}: uploaded version {index.version} ({was}; S3 object version "
        f"{result.s3_version_id})"
    )
    if not result.bucket_versioned:
        print(
            f"warning: bucket {location.bucket} is not versioned; a bad publish cannot be "
            "rolled back",
            file=sys.stderr,
        )


def _with_redis(url: str, work):
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=120, socket_connect_timeout=5)
    except ValueError as exc:
        raise Failed(f"bad --redis-url: {exc}") from None
    try:
        return work(client)
    except redis.ReadOnlyError:
        raise Failed(f"Redis {_redact(url)} is a read-only replica; sync to the primary") from None
    except redis.RedisError as exc:
        raise Failed(f"Redis {_redact(url)}: {exc}") from None
    finally:
        client.close()


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


class _progress:
    """Progress bars on a terminal; silent in CI logs and pipes."""

    def __enter__(self):
        if not sys.stderr.isatty() or os.environ.get("CI"):
            return None
        from tqdm import tqdm

        bars: dict[str, tqdm] = {}

        def update(stage: str, advance: int, total: int) -> None:
            if stage not in bars:
                label = {"read": "reading Redis", "write": "writing"}[stage]
                bars[stage] = tqdm(total=total, desc=label, unit=" keys", leave=False)
            bars[stage].update(advance)

        self.bars = bars
        return update

    def __exit__(self, *exc) -> None:
        for bar in getattr(self, "bars", {}).values():
            bar.close()


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, prefix=f".{path.name}.") as tmp:
        tmp.write(data)
    os.replace(tmp.name, path)
