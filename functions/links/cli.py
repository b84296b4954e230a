"""`python -m functions.links validate|build|diff|sync [PATH...]`, `history`, `rollback`.

Exit status: 0 success, 1 the links are invalid, 2 bad usage, 3 Redis or S3
failed (nothing half-applied: see redis_sync).

redis-py and boto3 are imported by the commands that use them, so `validate`
(run on every save and in every `pulumi preview`) stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .index import Index, InvalidIndex, LinkDiff, build_index, diff_indexes
from .source import LinkErrors, load_links

EXIT_INVALID = 1
EXIT_FAILED = 3
DEFAULT_PATHS = ("links",)


class Failed(Exception):
    """An operational failure with a message for the user (exit 3)."""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if not hasattr(args, "paths"):  # works on what is published, not on links/
            return args.run(args)
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
    sync.add_argument("--commit", help="the commit the links come from (default $GITHUB_SHA)")

    history = commands.add_parser(
        "history", help="list the published versions", description=_history.__doc__
    )
    history.add_argument("--s3-uri", required=True, help="s3://bucket/key of the index object")
    history.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    history.set_defaults(run=_history)
    rollback = commands.add_parser(
        "rollback", help="publish an earlier version again", description=_rollback.__doc__
    )
    rollback.add_argument("--to", required=True, metavar="VERSION", help="index version")
    rollback.add_argument("--s3-uri", help="the index object (default: the stack outputs')")
    add_wait_arguments(rollback, required=False)
    rollback.set_defaults(run=_rollback)
    return parser


def add_wait_arguments(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """Where a stack's regions are and how to wait for them (publishing, rollback)."""
    parser.add_argument(
        "--stack-outputs",
        type=Path,
        required=required,
        help="`pulumi stack output --json`: index bucket, static sites, each region's /healthz",
    )
    parser.add_argument("--timeout", type=float, default=300, help="seconds (default 300)")
    parser.add_argument("--interval", type=float, default=2, help="seconds between probes")
    parser.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'")
    parser.add_argument(
        "--skip-region",
        action="append",
        default=[],
        metavar="REGION",
        help="a region that is down: not waited for (repeatable; scripts/publish_links.py)",
    )


def _history(args) -> int:
    """List the uploads of the index object, newest first: when, which index version,
    how many links, and the commit that published it."""
    from .s3 import history

    location = _location(args.s3_uri)
    published = _s3_call(location, lambda: history(location, args.limit))
    if not published:
        print(f"nothing published at {location}")
        return 0
    rows = [("published (UTC)", "version", "links", "commit", "")]
    for item in published:
        notes = ["serving"] if item.current else []
        if item.rollback_from:
            notes.append(f"rollback from {item.rollback_from}")
        count = "?" if item.count is None else str(item.count)
        when = item.time.strftime("%Y-%m-%d %H:%M:%S")
        commit = (item.commit or "-")[:12]
        rows.append((when, item.version or "?", count, commit, ", ".join(notes)))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


def _rollback(args) -> int:
    """Publish an earlier index version again through the normal path (upload, sync,
    every region) and wait until every region serves it. An emergency lever: the
    next publish from main wins, so fix forward in links/."""
    from scripts.publish_links import parse_target, publish

    target = parse_target(_parser(), args) if args.stack_outputs else None
    uri = args.s3_uri or (str(target.location) if target else None)
    if uri is None:
        raise Failed("rollback needs --s3-uri or --stack-outputs")
    location = _location(uri)
    if target:
        target = dataclasses.replace(target, location=location)
    earlier, current = _s3_call(location, lambda: _find_published(location, args.to))
    if earlier is None:
        raise Failed(f"version {args.to} was never published to {location}; see `history`")
    from .s3 import get_index

    index = _s3_call(location, lambda: get_index(location, earlier.s3_version_id))
    print(
        f"rolling {location} back from {current or 'nothing'} to {index.version} "
        f"({index.count} links, published {earlier.time:%Y-%m-%d %H:%M:%S} UTC"
        f"{f' from commit {earlier.commit}' if earlier.commit else ''})"
    )
    # The links are that upload's: never the commit this rollback happens to run from.
    commit = earlier.commit or "unknown"
    if target is None:
        from .s3 import put_index

        _s3_call(location, lambda: put_index(location, index, commit=commit, rollback_from=current))
        print(
            "uploaded; the sync applies it. Not waiting for the regions nor rewriting the "
            "directory: give --stack-outputs for both"
        )
        return 0
    return publish(index, target, commit=commit, rollback_from=current)


def _find_published(location, version: str):
    """(the newest upload of `version`, the version serving now)."""
    from .s3 import published_versions

    current = None
    for item in published_versions(location):
        if item.current:
            current = item.version
        if item.version == version:
            return item, current
    return None, current


def _location(uri: str):
    from .s3 import S3Location

    try:
        return S3Location.parse(uri)
    except ValueError as exc:
        raise Failed(str(exc)) from None


def _s3_call(location, work):
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return work()
    except (ClientError, BotoCoreError, InvalidIndex) as exc:
        raise Failed(f"S3 {location}: {exc}") from None


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
        _publish_to_s3(args.s3_uri, index, args.commit)
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


def _publish_to_s3(uri: str, index: Index, commit: str | None) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    from .s3 import S3Location, put_index

    try:
        location = S3Location.parse(uri)
    except ValueError as exc:
        raise Failed(str(exc)) from None
    try:
        result = put_index(location, index, commit=commit)
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
