"""The link CLI end to end: real files, a real Redis, a local S3 (moto server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from functions.links.index import Index, build_index
from functions.links.model import META_KEY
from functions.links.s3 import S3Location, get_index
from functions.links.source import load_links

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "functions.links", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        timeout=120,
        check=False,
    )


@pytest.fixture
def links_dir(tmp_path) -> Path:
    directory = tmp_path / "links"
    directory.mkdir()
    (directory / "a.yaml").write_text("docs: https://docs.example.com/\ngh: https://github.com/x\n")
    return directory


def break_links(directory: Path) -> None:
    (directory / "b.yaml").write_text("docs: https://elsewhere.example/\nBad Slug: nope\n")


def test_validate_reports_ok_and_every_problem(links_dir):
    ok = cli("validate", str(links_dir))
    assert ok.returncode == 0 and ok.stdout.startswith("ok: 2 links, version ")
    break_links(links_dir)
    bad = cli("validate", str(links_dir))
    assert bad.returncode == 1
    assert "b.yaml:1: docs: defined more than once" in bad.stderr
    assert "b.yaml:2: Bad Slug: slug must be lowercase" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_validate_defaults_to_the_repository_links():
    result = cli("validate")
    assert result.returncode == 0, result.stderr
    assert f"{len(load_links([REPO / 'links']))} links" in result.stdout


def test_build_writes_the_canonical_index_and_nothing_when_invalid(links_dir, tmp_path):
    out = tmp_path / "out" / "index.json"
    assert cli("build", str(links_dir), "--out", str(out)).returncode == 0
    assert out.read_bytes() == build_index(load_links([links_dir])).to_bytes()
    stdout = cli("build", str(links_dir), "--out", "-")
    assert stdout.stdout.encode() == out.read_bytes()
    break_links(links_dir)
    out.unlink()
    assert cli("build", str(links_dir), "--out", str(out)).returncode == 1
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_sync_then_diff_against_redis(links_dir, redis_primary):
    url = redis_primary.url
    first = cli("sync", str(links_dir), "--redis-url", url)
    assert first.returncode == 0, first.stderr
    assert "applied" in first.stdout and "2 added" in first.stdout
    again = cli("sync", str(links_dir), "--redis-url", url)
    assert "already up to date" in again.stdout and "0 keys written" in again.stdout

    (links_dir / "a.yaml").write_text(
        "docs: https://docs.example.com/v2\nnew: https://n.example/\n"
    )
    text = cli("diff", str(links_dir), "--redis-url", url)
    assert text.returncode == 0
    assert text.stdout.splitlines()[:3] == [
        "+ new -> https://n.example/",
        "~ docs -> https://docs.example.com/v2",
        "- gh",
    ]
    as_json = json.loads(cli("diff", str(links_dir), "--redis-url", url, "--format", "json").stdout)
    assert (as_json["added"], as_json["changed"], as_json["removed"]) == (["new"], ["docs"], ["gh"])
    assert redis_primary.client().get("link:gh")  # diff wrote nothing


def test_invalid_links_change_nothing_anywhere(links_dir, redis_primary, s3_bucket):
    uri = f"s3://{s3_bucket}/index/links.json"
    assert (
        cli("sync", str(links_dir), "--redis-url", redis_primary.url, "--s3-uri", uri).returncode
        == 0
    )
    client = redis_primary.client()
    before_redis = {key: client.dump(key) for key in client.scan_iter()}
    before_s3 = boto3.client("s3").list_object_versions(Bucket=s3_bucket)["Versions"]
    break_links(links_dir)

    result = cli("sync", str(links_dir), "--redis-url", redis_primary.url, "--s3-uri", uri)

    assert result.returncode == 1 and "defined more than once" in result.stderr
    assert {key: client.dump(key) for key in client.scan_iter()} == before_redis
    assert boto3.client("s3").list_object_versions(Bucket=s3_bucket)["Versions"] == before_s3


def test_s3_publish_is_versioned_and_a_rollback_away(links_dir, s3_bucket):
    uri = f"s3://{s3_bucket}/index/links.json"
    location = S3Location.parse(uri)
    first = cli("sync", str(links_dir), "--s3-uri", uri, env={"GITHUB_SHA": ""})
    assert first.returncode == 0, first.stderr
    assert "uploaded" in first.stdout
    v1 = build_index(load_links([links_dir]))
    head = boto3.client("s3").head_object(Bucket=s3_bucket, Key="index/links.json")
    assert head["Metadata"] == {"index-version": v1.version, "link-count": "2"}
    assert head["ContentType"] == "application/json"
    v1_object_version = head["VersionId"]

    # A re-run uploads again (so a failed sync gets another chance) with the same content.
    assert "(unchanged;" in cli("sync", str(links_dir), "--s3-uri", uri).stdout
    (links_dir / "a.yaml").write_text("docs: https://docs.example.com/v2\n")
    assert cli("sync", str(links_dir), "--s3-uri", uri).returncode == 0

    versions = boto3.client("s3").list_object_versions(Bucket=s3_bucket)["Versions"]
    assert len(versions) == 3
    assert get_index(location).version != v1.version
    assert get_index(location, v1_object_version) == v1  # the rollback source


def test_an_unversioned_bucket_is_published_with_a_warning(links_dir, s3_server):
    s3 = boto3.client("s3")
    s3.create_bucket(
        Bucket="plain-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    result = cli("sync", str(links_dir), "--s3-uri", "s3://plain-bucket/links.json")
    assert result.returncode == 0
    assert "warning: bucket plain-bucket is not versioned" in result.stderr
    body = s3.get_object(Bucket="plain-bucket", Key="links.json")["Body"].read()
    assert Index.from_bytes(body).count == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sync"], "sync needs --redis-url"),
        (["sync", "--s3-uri", "https://bucket/key"], "expected s3://bucket/key"),
        (["sync", "--s3-uri", "s3://no-such-bucket-here/k"], "S3 s3://no-such-bucket-here/k"),
        (["sync", "--redis-url", "redis://127.0.0.1:1/0"], "Redis redis://127.0.0.1:1/0"),
        (["diff", "--redis-url", "http://nope"], "bad --redis-url"),
    ],
)
def test_operational_failures_are_clear_errors(links_dir, s3_server, args, message):
    env = {"REDIS_URL": ""}
    result = cli(args[0], str(links_dir), *args[1:], env=env)
    assert result.returncode == 3, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_syncing_to_a_replica_says_so(links_dir, redis_replicated):
    _, replica = redis_replicated
    result = cli("sync", str(links_dir), "--redis-url", replica.url)
    assert result.returncode == 3
    assert "is a read-only replica; sync to the primary" in result.stderr
    assert replica.client().hget(META_KEY, "version") is None


def test_the_password_never_reaches_the_output(links_dir, redis_factory):
    server = redis_factory("secured", password="s3cret-token")
    result = cli("sync", str(links_dir), "--redis-url", server.url)
    assert result.returncode == 0, result.stderr
    assert "s3cret-token" not in result.stdout + result.stderr
    assert ":***@" in result.stdout
    wrong = cli("sync", str(links_dir), "--redis-url", server.url.replace("s3cret", "wrong"))
    assert wrong.returncode == 3 and "wrong-token" not in wrong.stderr


def test_diff_against_the_published_index_in_s3_as_markdown(links_dir, s3_bucket):
    uri = f"s3://{s3_bucket}/index/links.json"
    first = cli(
        "diff", str(links_dir), "--against-s3", uri, "--format", "markdown", "--label", "dev"
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("<!-- golinks:link-diff:dev -->\n### Link changes for dev")
    assert "Published: `nothing yet`" in first.stdout
    assert "| added | `docs` | https://docs.example.com/ | 302 |" in first.stdout

    assert cli("sync", str(links_dir), "--s3-uri", uri).returncode == 0
    unchanged = cli("diff", str(links_dir), "--against-s3", uri, "--format", "markdown")
    assert "No link changes." in unchanged.stdout

    (links_dir / "a.yaml").write_text(
        "docs: https://docs.example.com/v2|x\nnew:\n  url: https://n.example/\n  status: 301\n"
    )
    changed = cli("diff", str(links_dir), "--against-s3", uri, "--format", "markdown")
    old, new = "~~https://docs.example.com/~~", "https://docs.example.com/v2\\|x"
    assert f"| changed | `docs` | {old} → {new} | 302 |" in changed.stdout
    assert "| added | `new` | https://n.example/ | 301 |" in changed.stdout
    assert "| removed | `gh` | | |" in changed.stdout
    as_json = json.loads(
        cli("diff", str(links_dir), "--against-s3", uri, "--format", "json").stdout
    )
    assert (as_json["added"], as_json["changed"], as_json["removed"]) == (["new"], ["docs"], ["gh"])


def test_invalid_links_render_as_a_markdown_report_and_fail(links_dir, s3_bucket):
    break_links(links_dir)
    result = cli(
        "diff",
        str(links_dir),
        "--against-s3",
        f"s3://{s3_bucket}/i.json",
        "--format",
        "markdown",
        "--label",
        "prod",
    )
    assert result.returncode == 1
    assert "**The links are invalid; nothing can be published" in result.stdout
    assert "b.yaml:2: Bad Slug: slug must be lowercase" in result.stdout


def test_diff_needs_exactly_one_thing_to_compare_with(links_dir):
    assert cli("diff", str(links_dir)).returncode == 2
    both = cli("diff", str(links_dir), "--redis-url", "redis://x", "--against-s3", "s3://b/k")
    assert both.returncode == 2 and "not allowed with" in both.stderr


def test_history_lists_versions_with_their_commit_and_rollback_republishes_one(
    links_dir, s3_bucket
):
    uri = f"s3://{s3_bucket}/index/links.json"
    assert cli("history", "--s3-uri", uri).stdout == f"nothing published at {uri}\n"
    assert cli("sync", str(links_dir), "--s3-uri", uri, "--commit", "a" * 40).returncode == 0
    v1 = build_index(load_links([links_dir]))
    (links_dir / "a.yaml").write_text("docs: https://docs.example.com/v2\n")
    assert (
        cli("sync", str(links_dir), "--s3-uri", uri, env={"GITHUB_SHA": "b" * 40}).returncode == 0
    )
    v2 = build_index(load_links([links_dir]))

    listed = cli("history", "--s3-uri", uri)
    assert listed.returncode == 0, listed.stderr
    header, newest, oldest = listed.stdout.splitlines()
    assert header.split() == ["published", "(UTC)", "version", "links", "commit"]
    assert newest.split()[2:] == [v2.version, "1", "b" * 12, "serving"]
    assert oldest.split()[2:] == [v1.version, "2", "a" * 12]

    rolled = cli("rollback", "--s3-uri", uri, "--to", v1.version)
    assert rolled.returncode == 0, rolled.stderr
    assert f"back from {v2.version} to {v1.version}" in rolled.stdout
    assert get_index(S3Location.parse(uri)) == v1  # a new upload: the sync applies it
    head = boto3.client("s3").head_object(Bucket=s3_bucket, Key="index/links.json")
    assert head["Metadata"]["commit"] == "a" * 40  # the links are that commit's
    assert head["Metadata"]["rollback-from"] == v2.version
    newest = cli("history", "--s3-uri", uri, "--limit", "1").stdout.splitlines()[1]
    rollback_note = ["serving,", "rollback", "from", v2.version]
    assert newest.split()[2:] == [v1.version, "2", "a" * 12, *rollback_note]

    unknown = cli("rollback", "--s3-uri", uri, "--to", "0123456789abcdef")
    assert unknown.returncode == 3
    assert "version 0123456789abcdef was never published" in unknown.stderr
    assert get_index(S3Location.parse(uri)) == v1
    assert cli("rollback", "--to", v1.version).returncode == 3  # where to?
