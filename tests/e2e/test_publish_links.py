"""CI's publish step (scripts/publish_links.py) against the local stack, as CI runs it."""

from __future__ import annotations

import pytest

from functions.links.s3 import S3Location, history
from local.servers import local_s3_client

from .conftest import REPO, Client, publish, run_publisher


def object_versions(stack) -> int:
    bucket = stack.endpoints.index_buckets[stack.endpoints.primary_region]
    s3 = local_s3_client(stack.s3_server.endpoint)
    return len(s3.list_object_versions(Bucket=bucket).get("Versions", []))


@pytest.mark.smoke
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


def test_a_region_that_does_not_catch_up_fails_the_job_unless_it_is_skipped(stack, tmp_path):
    links = tmp_path / "links"
    links.mkdir()
    (links / "a.yaml").write_text("only/one: https://example.com/only\n")
    outputs = stack.endpoints.stack_outputs()
    # With Cloudflare the region is down, and so is its own CDN's invalidation: a warning
    # only once skipped. With Route 53 its clients' CDN is the one global distribution: it
    # still invalidates.
    regional_cdn = stack.router == "cloudflare"
    if regional_cdn:
        outputs["regions"]["us-west-2"]["distribution_id"] = "EDOWN"
    stack.run(stack.proxies["us-west-2"].cut())
    try:
        waited = publish(stack, links, tmp_path, "--timeout", "2", outputs=outputs)
        skipped = publish(
            stack, links, tmp_path, "--timeout", "30", "--skip-region", "us-west-2", outputs=outputs
        )
    finally:
        stack.run(stack.proxies["us-west-2"].restore())
    assert waited.returncode == 1
    row = next(line for line in waited.stdout.splitlines() if line.startswith("us-west-2"))
    assert "NOT SERVING" in row

    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert "waiting for 2 regions" in skipped.stdout and "NOT SERVING" not in skipped.stdout
    assert "us-west-2: SKIPPED as unreachable" in skipped.stdout
    assert "check it serves" in skipped.stdout
    warning = "warning: us-west-2 (skipped) did not invalidate"
    assert (warning in skipped.stdout) == regional_cdn
    assert skipped.stdout.count("NOT COMPLETED") == (1 if regional_cdn else 0)


@pytest.mark.parametrize(
    ("skip", "refusal"),
    [
        (["eu-central-1"], "--skip-region eu-central-1: not a region of the stack"),
        (["eu-west-1", "us-west-2", "ap-southeast-1"], "every region of the stack skipped"),
    ],
)
def test_a_skipped_region_must_be_one_of_the_stack_s_but_not_all(stack, tmp_path, skip, refusal):
    before = object_versions(stack)
    flags = [arg for region in skip for arg in ("--skip-region", region)]
    result = publish(stack, REPO / "links", tmp_path, *flags)
    assert result.returncode == 2 and refusal in result.stderr
    assert "Traceback" not in result.stderr
    assert object_versions(stack) == before


def test_invalid_links_are_not_uploaded(stack, tmp_path):
    links = tmp_path / "links"
    links.mkdir()
    (links / "a.yaml").write_text("Bad Slug: nope\n")
    before = object_versions(stack)
    result = publish(stack, links, tmp_path, "--timeout", "2")
    assert result.returncode == 1 and "a.yaml:1: Bad Slug:" in result.stderr
    assert object_versions(stack) == before


def test_templates_details_and_the_directory_from_every_client_region(stack, tmp_path):
    result = publish(stack, REPO / "links", tmp_path, "--timeout", "30")
    assert result.returncode == 0, result.stdout + result.stderr
    (version,) = set(stack.served_versions().values())
    for region in stack.topology.regions:
        client = Client(stack, region)
        jira = client.get("/jira/ABC-123")
        assert jira.status_code == 302, region
        assert jira.headers["Location"] == "https://jira.example.com/browse/ABC-123"
        repo = client.get("/gh/repo/golinks/pulls")
        assert repo.headers["Location"] == "https://github.com/example/golinks/pulls"
        assert client.get("/docs/more").status_code == 404  # not a template: not a prefix
        details = client.get("/jira+")
        assert details.status_code == 200 and "Location" not in details.headers
        for shown in ("https://jira.example.com/browse/{path}", "Platform team", version):
            assert shown in details.text, region
        page = client.get("/_links")
        assert page.status_code == 200 and page.headers["X-Edge-Cache"] == "static"
        assert page.headers["Content-Type"] == "text/html; charset=utf-8"
        assert version in page.text and "id=q type=search" in page.text
        directory = client.get("/_links.json").json()
        assert directory["version"] == version
        slugs = [link["slug"] for link in directory["links"]]
        assert slugs == sorted(slugs) and "jira" in slugs
        jira_entry = directory["links"][slugs.index("jira")]
        assert (jira_entry["owner"], jira_entry["template"]) == ("Platform team", True)


def test_rollback_republishes_an_earlier_version_everywhere_and_waits(stack, tmp_path):
    links = tmp_path / "links"
    links.mkdir()
    (links / "a.yaml").write_text("good: https://example.com/good\n")
    first = publish(stack, links, tmp_path, "--timeout", "30", "--commit", "1" * 40)
    assert first.returncode == 0, first.stdout + first.stderr
    (good,) = set(stack.served_versions().values())
    (links / "a.yaml").write_text("good: https://example.com/broken\n")
    assert publish(stack, links, tmp_path, "--timeout", "30").returncode == 0
    (bad,) = set(stack.served_versions().values())

    rolled = run_publisher(
        stack, tmp_path, "functions.links rollback", "--to", good, "--timeout", "30"
    )
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert f"rolling {stack.endpoints.index_s3_uri} back from {bad} to {good}" in rolled.stdout
    assert set(stack.served_versions().values()) == {good}  # it waited for every region
    for region in stack.topology.regions:
        client = Client(stack, region)
        assert client.get("/good").headers["Location"] == "https://example.com/good"
        assert client.get("/_links.json").json()["version"] == good
    location = S3Location.parse(stack.endpoints.index_s3_uri)
    latest, before, _ = history(location, 3, local_s3_client(stack.s3_server.endpoint))
    assert (latest.version, latest.commit, latest.rollback_from) == (good, "1" * 40, bad)
    assert latest.current and (before.version, before.current) == (bad, False)


def test_a_cdn_that_cannot_invalidate_fails_the_job_with_a_report(stack, tmp_path):
    links = tmp_path / "links"
    links.mkdir()
    (links / "a.yaml").write_text("cdn/down: https://example.com/cdn\n")
    dead_api = {"AWS_ENDPOINT_URL_CLOUDFRONT": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"}
    result = publish(stack, links, tmp_path, "--timeout", "3", env=dead_api)
    assert result.returncode == 1
    assert "serving" in result.stdout  # every region caught up: only the CDN failed
    distributions = set(stack.endpoints.distribution_ids.values())
    assert len(distributions) == (1 if stack.router == "route53" else len(stack.topology.regions))
    assert result.stdout.count("NOT COMPLETED") == len(distributions)


def test_outputs_without_distribution_ids_are_refused_before_uploading(stack, tmp_path):
    outputs = stack.endpoints.stack_outputs()
    for facts in outputs["regions"].values():
        facts.pop("distribution_id")
    before = object_versions(stack)
    result = publish(stack, REPO / "links", tmp_path, outputs=outputs)
    assert result.returncode == 2 and "no distribution_id for eu-west-1" in result.stderr
    assert object_versions(stack) == before
