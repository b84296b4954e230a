"""The deploy role may make every IAM change a Datastore failover's `pulumi up` makes."""

from __future__ import annotations

import pytest
from golinks_policy import access
from golinks_policy.iam import Request, allowed

from .harness import Deployment, deploy
from .policies import ROLE, ROLE_POLICY, stack_of

ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
IAM_TYPES = (ROLE, ROLE_POLICY, ATTACHMENT, "aws:iam/policy:Policy")


@pytest.fixture(scope="module")
def promoted(archive):
    return deploy("prod", archive, {"golinks:primaryRegion": "us-west-2"})


def iam_resources(d: Deployment) -> dict:
    return {(r.type, r.name): r for r in d.resources if r.type in IAM_TYPES}


def changes(before: Deployment, after: Deployment) -> list[Request]:
    """The IAM API calls that turn `before` into `after`, as the AWS provider makes them."""
    old, new = iam_resources(before), iam_resources(after)
    boundaries = {
        r["name"]: r["permissions_boundary"] for d in (before, after) for r in d.of_type(ROLE)
    }
    account = after.account_id
    requests = []
    for key in old.keys() | new.keys():
        was, now = old.get(key), new.get(key)
        if was and now and was.inputs == now.inputs:
            continue
        resource = now or was
        role = resource["name"] if resource.type == ROLE else resource["role"]
        arn = f"arn:aws:iam::{account}:role/{role}"
        bounded = {"iam:PermissionsBoundary": boundaries[role]} if boundaries.get(role) else {}
        if resource.type == ROLE_POLICY:
            action = "iam:PutRolePolicy" if now else "iam:DeleteRolePolicy"
            requests.append(Request(action, arn, bounded))
        elif resource.type == ROLE and not was:
            requests.append(Request("iam:CreateRole", arn, bounded))
            requests.append(Request("iam:TagRole", arn))
            requests.append(
                Request("iam:PassRole", arn, {"iam:PassedToService": "lambda.amazonaws.com"})
            )
        elif resource.type == ROLE and not now:
            requests.append(Request("iam:ListInstanceProfilesForRole", arn))
            requests.append(Request("iam:DeleteRole", arn))
        elif resource.type == ROLE:
            requests.append(Request("iam:UpdateAssumeRolePolicy", arn))
            requests.append(Request("iam:UpdateRole", arn))
        else:
            raise AssertionError(f"a failover should change no {resource.type}: {key}")
    return requests


def test_a_failover_changes_the_publisher_and_the_moved_sync_policies(deployments, promoted):
    roles = {r.resource.rsplit("/", 1)[1] for r in changes(deployments["prod"], promoted)}
    assert "golinks-prod-publish" in roles
    assert {"golinks-prod-euw1-sync", "golinks-prod-usw2-sync"} <= roles


def test_the_deploy_role_may_make_every_iam_change_of_a_failover(deployments, promoted):
    documents = access.role_documents(stack_of(promoted), "golinks-prod-deploy")
    denied = [r for r in changes(deployments["prod"], promoted) if not allowed(r, documents)]
    assert denied == []
