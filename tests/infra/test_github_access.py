"""GitHub's two OIDC subject forms: the trust policies match exactly the one configured."""

from __future__ import annotations

import pytest

from .harness import deploy
from .policies import ROLE, report

IMMUTABLE = "example@1234567/golinks@89012345"


@pytest.fixture(scope="module")
def immutable(archive):
    """prod for a repository whose tokens carry the immutable subject."""
    return deploy("prod", archive, {"golinks:githubRepository": IMMUTABLE})


def subjects(d) -> dict[str, dict]:
    return {
        role["name"]: statement["Condition"]
        for role in d.of_type(ROLE)
        for statement in role.policy_document("assume_role_policy")["Statement"]
        if "Federated" in statement["Principal"]
    }


def test_the_trust_policies_name_the_immutable_subject_exactly(immutable):
    host = "token.actions.githubusercontent.com"
    assert subjects(immutable) == {
        f"golinks-prod-{purpose}": {
            "StringEquals": {
                f"{host}:aud": "sts.amazonaws.com",
                f"{host}:sub": f"repo:{IMMUTABLE}:environment:{environment}",
            }
        }
        for purpose, environment in (
            ("deploy", "prod"),
            ("publish", "prod"),
            ("preview", "prod-preview"),
        )
    }


def test_the_legacy_form_stays_exactly_the_legacy_form(deployments):
    assert {
        c["StringEquals"]["token.actions.githubusercontent.com:sub"]
        for c in subjects(deployments["prod"]).values()
    } == {
        "repo:example/golinks:environment:prod",
        "repo:example/golinks:environment:prod-preview",
    }


def test_a_stack_with_immutable_subjects_passes_every_policy(immutable):
    assert report(immutable) == {}
