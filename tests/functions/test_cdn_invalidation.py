"""Invalidating every region's CloudFront distribution, against moto server's CloudFront."""

from __future__ import annotations

import uuid

import boto3
import pytest

from scripts.cdn_invalidation import BUSY, invalidate_everywhere, report

REGIONS = ("eu-west-1", "us-west-2", "ap-southeast-1")


@pytest.fixture
def cloudfront(s3_server):
    """A CloudFront client on the moto server, and one distribution per region."""
    client = boto3.client("cloudfront", endpoint_url=s3_server.endpoint, region_name="us-east-1")
    distributions = {}
    for region in REGIONS:
        config = {
            "CallerReference": uuid.uuid4().hex,
            "Comment": f"golinks {region}",
            "Enabled": True,
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "api",
                        "DomainName": f"api.{region}.example.com",
                        "CustomOriginConfig": {
                            "HTTPPort": 80,
                            "HTTPSPort": 443,
                            "OriginProtocolPolicy": "https-only",
                        },
                    }
                ],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": "api",
                "ViewerProtocolPolicy": "redirect-to-https",
                "MinTTL": 0,
            },
        }
        created = client.create_distribution(DistributionConfig=config)
        distributions[region] = created["Distribution"]["Id"]
    return client, distributions


class FakeClock:
    """Time that passes only when the code under test sleeps."""

    def __init__(self):
        self.now, self.sleeps = 0.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def invalidate(self, client, distributions, paths, *, timeout: float, interval: float):
        """invalidate_everywhere on this clock."""
        return invalidate_everywhere(
            client,
            distributions,
            paths,
            reference="golinks-test",
            timeout=timeout,
            interval=interval,
            clock=self,
            sleep=self.sleep,
        )


def in_progress_for(client, polls: int) -> list[int]:
    """Make GetInvalidation report InProgress `polls` times per invalidation, as CloudFront does
    for the minutes an invalidation takes (moto completes them at once)."""
    seen: dict[str, int] = {}

    def rewrite(parsed, **kwargs):
        invalidation = parsed.get("Invalidation")
        if invalidation:
            seen[invalidation["Id"]] = seen.get(invalidation["Id"], 0) + 1
            if seen[invalidation["Id"]] <= polls:
                invalidation["Status"] = "InProgress"

    client.meta.events.register("after-call.cloudfront.GetInvalidation", rewrite)
    client.meta.events.register("after-call.cloudfront.CreateInvalidation", rewrite)
    return seen


def test_every_distribution_gets_one_batch_with_every_path(cloudfront):
    client, distributions = cloudfront
    paths = ("/_links*", "/docs*", "/gone*")
    states = invalidate_everywhere(
        client, distributions, paths, reference="golinks-v1", timeout=10, interval=0.01
    )
    assert all(state.completed for state in states), report(states, paths)
    for region, dist in distributions.items():
        listed = client.list_invalidations(DistributionId=dist)["InvalidationList"]["Items"]
        assert len(listed) == 1, region
        batch = client.get_invalidation(DistributionId=dist, Id=listed[0]["Id"])["Invalidation"]
        assert batch["InvalidationBatch"]["Paths"]["Items"] == list(paths)
        assert batch["InvalidationBatch"]["CallerReference"].startswith("golinks-v1-")
    assert "completed after" in report(states, paths)


def test_waits_until_cloudfront_reports_every_invalidation_completed(cloudfront):
    client, distributions = cloudfront
    answers = in_progress_for(client, 3)  # the create answer and two polls say InProgress
    clock = FakeClock()
    states = clock.invalidate(client, distributions, ("/docs*",), timeout=60, interval=5)
    assert all(state.completed for state in states)
    assert list(answers.values()) == [4] * len(REGIONS)  # 3 x InProgress, then Completed
    assert clock.sleeps == [5, 5, 5]
    assert {state.completed_after for state in states} == {15}


def test_an_invalidation_that_never_completes_fails_with_a_report(cloudfront):
    client, distributions = cloudfront
    in_progress_for(client, 10_000)
    clock = FakeClock()
    states = clock.invalidate(client, distributions, ("/*",), timeout=30, interval=10)
    assert not any(state.completed for state in states)
    assert clock.now == 30
    text = report(states, ("/*",))
    assert text.count("NOT COMPLETED") == len(REGIONS) and "InProgress" in text


def test_a_busy_distribution_is_retried_and_an_unknown_one_reported(cloudfront):
    client, distributions = cloudfront
    busy = {"left": 2}

    def refuse(model, **kwargs):
        if busy["left"]:
            busy["left"] -= 1
            error = {"Error": {"Code": BUSY, "Message": "Your request contains too many"}}
            return type("Http", (), {"status_code": 400, "headers": {}})(), error
        return None

    client.meta.events.register("before-call.cloudfront.CreateInvalidation", refuse)
    clock = FakeClock()
    everywhere = {**distributions, "us-east-2": "E0000000000000"}
    states = clock.invalidate(client, everywhere, ("/docs*",), timeout=20, interval=1)
    by_region = {region: state for state in states for region in state.regions}
    assert all(by_region[region].completed for region in REGIONS)
    unknown = by_region["us-east-2"]
    assert not unknown.completed and unknown.refused  # asked once, not until the deadline
    assert "NoSuchDistribution" in (unknown.error or "")
    assert clock.now < 20


def test_nothing_to_invalidate_sends_nothing(cloudfront):
    client, distributions = cloudfront
    states = invalidate_everywhere(
        client, distributions, (), reference="golinks-v5", timeout=1, interval=1
    )
    assert all(state.completed for state in states)
    for dist in distributions.values():
        assert client.list_invalidations(DistributionId=dist)["InvalidationList"]["Quantity"] == 0


def test_regions_sharing_a_distribution_share_its_one_invalidation(cloudfront):
    """With the Route 53 router every region exports the same, one distribution."""
    client, distributions = cloudfront
    one = distributions["eu-west-1"]
    states = invalidate_everywhere(
        client, dict.fromkeys(REGIONS, one), ("/docs*",), reference="v2", timeout=10, interval=0.01
    )
    assert [(state.regions, state.completed) for state in states] == [(REGIONS, True)]
    assert client.list_invalidations(DistributionId=one)["InvalidationList"]["Quantity"] == 1
    assert ", ".join(REGIONS) in report(states, ("/docs*",))
