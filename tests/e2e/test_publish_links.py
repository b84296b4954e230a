"""CI's publish step (scripts/publish_links.py) against the local stack, as CI runs it."""

from __future__ import annotations

from local.servers import local_s3_client

from .conftest import REPO, publish


def object_versions(stack) -> int:
    bucket = stack.endpoints.index_buckets[stack.endpoints.primary_region]
    s3 = local_s3_client(stack.s3_server.endpoint)
    return len(s3.list_object_versions(Bucket=bucket).get("Versions", []))


def test_publishing_reaches_every_region(stack, tmp_path):
    links = tmp_path / "links"
    links.mkdir()
    (links / "a.yaml").write_text(
        (REPO / "links" / "company.yaml").read_text() + "ci/new: https://example.com/ci\n"
    )
    result = publish(stack, links, tmp_path, "--timeout", "30")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "uploaded" in result.stdout and "NOT SERVING" not in result.stdout
    version = result.stdout.split("version ")[1].split(",")[0]
    assert set(stack.served_versions().values()) == {version}


def test_a_region_that_does_not_catch_up_fails_the_job_with_a_report(stack, tmp_path):
    links = tmp_path / "links"
    links.mkdir()
    (links / "a.yaml").write_text("only/one: https://example.com/only\n")
    stack.run(stack.proxies["us-west-2"].cut())
    try:
        result = publish(stack, links, tmp_path, "--timeout", "2")
    finally:
        stack.run(stack.proxies["us-west-2"].restore())
    assert result.returncode == 1
    row = next(line for line in result.stdout.splitlines() if line.startswith("us-west-2"))
    assert "NOT SERVING" in row


def test_invalid_links_are_not_uploaded(stack, tmp_path):
    links = tmp_path / "links"
    links.mkdir()
    (links / "a.yaml").write_text("Bad Slug: nope\n")
    before = object_versions(stack)
    result = publish(stack, links, tmp_path, "--timeout", "2")
    assert result.returncode == 1 and "a.yaml:1: Bad Slug:" in result.stderr
    assert object_versions(stack) == before
