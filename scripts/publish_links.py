"""Publish links/ to an environment and wait until every region serves them.

    python -m scripts.publish_links --stack-outputs outputs.json [PATH...] \\
        [--timeout 300] [--interval 2] [--header 'Name: value'] [--commit SHA] \\
        [--skip-region REGION]

`outputs.json` is `pulumi stack output --json` (its `index_s3_uri` and each
region's `healthz_url`, `distribution_id` and `static_bucket`). The index is
validated, built, uploaded as a new object version with the commit it was
built from (`--commit`, default $GITHUB_SHA; the bucket's notification makes
the sync function apply it), the link directory (`/_links`, `/_links.json`) is
written to every region's static site, then every region's /healthz is polled
until it reports the new version. Last, every region's CloudFront distribution
invalidates what changed against the index published before
(functions.links.invalidation), and the publish waits until every invalidation
completes: when it returns, every client everywhere gets the new answers.
`--skip-region` (repeatable) leaves out a region that is down, as in a
Datastore failover: its /healthz is not polled and its static site not
written, its CDN is still invalidated (CloudFront's API is global) but a
failure there is only a warning, and the report names it to check once it is
back.
Exit status: 0 every region and every CDN serves it, 1 invalid links, a region
did not catch up or a CDN did not invalidate (with a report), 2 bad usage,
3 S3 failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from functions.links.cli import add_wait_arguments
from functions.links.index import Index, InvalidIndex, build_index
from functions.links.invalidation import invalidation_paths
from functions.links.s3 import S3Location, get_index, put_directory, put_index
from functions.links.source import LinkErrors, load_links
from scripts import cdn_invalidation
from scripts.wait_for_version import parse_headers, report, urls_from_stack_outputs, wait


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.publish_links", description=__doc__.split("\n")[0]
    )
    parser.add_argument("paths", nargs="*", default=["links"], metavar="PATH")
    add_wait_arguments(parser)
    parser.add_argument("--commit", help="the commit the links come from (default $GITHUB_SHA)")
    args = parser.parse_args(argv)
    target = parse_target(parser, args)
    try:
        index = build_index(load_links(args.paths))
    except LinkErrors as exc:
        print(exc, file=sys.stderr)
        return 1
    return publish(index, target, commit=args.commit)


@dataclass(frozen=True)
class Target:
    """A stack's index, static sites and CDNs, and how to see every region serve a publish."""

    location: S3Location
    static_buckets: list[str]
    distributions: dict[str, str]
    urls: dict[str, str]
    headers: dict[str, str]
    timeout: float
    interval: float
    skipped: tuple[str, ...] = ()


def parse_target(parser: argparse.ArgumentParser, args) -> Target:
    try:
        outputs = json.loads(args.stack_outputs.read_text())
        regions = outputs["regions"]
        skipped = skipped_regions(parser, args.skip_region, list(regions))
        return Target(
            location=S3Location.parse(outputs["index_s3_uri"]),
            static_buckets=[
                facts["static_bucket"] for region, facts in regions.items() if region not in skipped
            ],
            distributions=distribution_ids(regions),
            urls={
                region: url
                for region, url in urls_from_stack_outputs(args.stack_outputs).items()
                if region not in skipped
            },
            headers=parse_headers(args.header),
            timeout=args.timeout,
            interval=args.interval,
            skipped=skipped,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        parser.error(f"--stack-outputs/--header: {exc}")


def skipped_regions(
    parser: argparse.ArgumentParser, requested: list[str], regions: list[str]
) -> tuple[str, ...]:
    """The regions to leave out (a region that is down); some region must stay checked."""
    skipped = tuple(dict.fromkeys(requested))
    unknown = [region for region in skipped if region not in regions]
    if unknown:
        parser.error(
            f"--skip-region {', '.join(unknown)}: not a region of the stack "
            f"(its regions: {', '.join(regions)})"
        )
    if len(skipped) == len(regions):
        parser.error("--skip-region: every region of the stack skipped, nothing would be checked")
    return skipped


def distribution_ids(regions: dict) -> dict[str, str]:
    """Each region's CloudFront distribution ID from the stack outputs' `regions`."""
    missing = [region for region, facts in regions.items() if not facts.get("distribution_id")]
    if missing:
        raise ValueError(
            f"no distribution_id for {', '.join(missing)}: these outputs predate CDN "
            "invalidation; run `pulumi up` for the stack, then publish"
        )
    return {region: facts["distribution_id"] for region, facts in regions.items()}


def publish(
    index: Index, target: Target, *, commit: str | None = None, rollback_from: str | None = None
) -> int:
    """Upload `index` and the directory, wait for every region, then for every CDN."""
    location = target.location
    try:
        published = published_index(location)
        uploaded = put_index(location, index, commit=commit, rollback_from=rollback_from)
        put_directory(index, target.static_buckets)
    except (BotoCoreError, ClientError) as exc:
        print(f"error: S3 {location}: {exc}", file=sys.stderr)
        return 3
    print(
        f"uploaded {index.count} links, version {index.version}, to {location} "
        f"(S3 object version {uploaded.s3_version_id}) and the directory to "
        f"{len(target.static_buckets)} static sites; waiting for {len(target.urls)} regions"
    )
    states = wait(
        index.version,
        target.urls,
        timeout=target.timeout,
        interval=target.interval,
        headers=target.headers,
    )
    print(report(states, index.version))
    for region in target.skipped:
        print(
            f"{region}: SKIPPED as unreachable (not waited for, its /_links not written): "
            f"check it serves {index.version} once it is back, or publish again"
        )
    if not all(state.reached_after is not None for state in states):
        return 1
    paths = invalidation_paths(published, index)
    invalidations = cdn_invalidation.invalidate_everywhere(
        cdn_invalidation.cloudfront_client(),
        target.distributions,
        paths,
        reference=f"golinks-{index.version}",
        timeout=target.timeout,
        interval=target.interval,
    )
    print(cdn_invalidation.report(invalidations, paths))
    # A distribution only skipped regions go through may wait; one shared with others may not.
    incomplete = [state.regions for state in invalidations if not state.completed]
    for regions in incomplete:
        if set(regions) <= set(target.skipped):
            print(
                f"warning: {', '.join(regions)} (skipped) did not invalidate: "
                "purge its CDN once it is back"
            )
    return 0 if all(set(regions) <= set(target.skipped) for regions in incomplete) else 1


def published_index(location: S3Location) -> Index | None:
    """The index published before (None: none yet, or unreadable, so everything is stale)."""
    try:
        return get_index(location)
    except InvalidIndex:
        return None
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey"):
            return None
        raise


if __name__ == "__main__":
    sys.exit(main())
