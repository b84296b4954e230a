"""Publishing reaches every CDN: the stack exports its distributions, and the publisher
may invalidate exactly those."""

from __future__ import annotations

import pytest

from .conftest import STACKS

DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
INVALIDATION_ACTIONS = ["cloudfront:CreateInvalidation", "cloudfront:GetInvalidation"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_region_exports_its_own_distribution_id(deployments, stack):
    d = deployments[stack]
    by_domain = {dist.outputs["domain_name"]: dist for dist in d.of_type(DISTRIBUTION)}
    exported = d.exports["regions"]
    for region, facts in exported.items():
        distribution = by_domain[facts["distribution_domain"]]
        assert facts["distribution_id"] == distribution.id, region
    assert len({facts["distribution_id"] for facts in exported.values()}) == len(exported)


@pytest.mark.parametrize("stack", STACKS)
def test_the_publisher_may_invalidate_only_the_stacks_distributions(deployments, stack):
    d = deployments[stack]
    policy = d.one("aws:iam/rolePolicy:RolePolicy", "-publish").policy_document()
    granting = [s for s in policy["Statement"] if set(INVALIDATION_ACTIONS) & set(s["Action"])]
    assert len(granting) == 1
    assert sorted(granting[0]["Action"]) == INVALIDATION_ACTIONS
    assert granting[0]["Resource"] == sorted(
        dist.outputs["arn"] for dist in d.of_type(DISTRIBUTION)
    )
    for role_policy in d.of_type("aws:iam/rolePolicy:RolePolicy"):
        if role_policy is not d.one("aws:iam/rolePolicy:RolePolicy", "-publish"):
            assert "cloudfront:CreateInvalidation" not in str(role_policy.policy_document())
