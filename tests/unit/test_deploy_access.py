"""The deploy role cannot make itself an administrator, and can still deploy and fail over.

Evaluated on the documents the program writes (components/planning.py) plus
AWS's PowerUserAccess, the deploy role's managed policy.
"""

from __future__ import annotations

import pytest
from golinks_policy import access, preview, review, store
from golinks_policy.iam import POWER_USER_ACCESS, Decision, Request, allowed, evaluate
from golinks_policy.model import Stack, StackFacts

from components import planning

ACCOUNT = "111111111111"
STACK = Stack(StackFacts("prod", ACCOUNT, "eu-west-1", "go.example.com", "example/golinks"), [])
DEPLOY = [POWER_USER_ACCESS, planning.deploy_iam_policy(ACCOUNT, "prod")]
BOUNDARY = planning.role_boundary_policy(ACCOUNT, "prod")
BOUNDARY_ARN = planning.boundary_policy_arn(ACCOUNT, "prod")
NEW_ROLE = f"arn:aws:iam::{ACCOUNT}:role/golinks-prod-x"
EVERYTHING = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def deploy_may(action: str, resource: str, **context) -> bool:
    return allowed(Request(action, resource, context), DEPLOY)


def test_the_pack_and_the_program_name_the_same_boundary():
    assert access.boundary_arn(STACK) == BOUNDARY_ARN
    assert access.administered_roles("prod") == set(planning.administered_role_names("prod"))
    # The pack cannot import the program: the calls that carry a role's boundary are
    # written in both, and must agree.
    assert set(planning.BOUNDED_ROLE_ACTIONS) == access.BOUNDED_ROLE_CALLS


def test_the_pack_and_the_program_agree_on_the_actions_that_take_no_resource():
    # Written in both for the same reason: the pack may allow Resource "*" for exactly
    # the actions the program grants on "*".
    program = {*planning.VPC_NETWORK_INTERFACE_ACTIONS, *planning.TRACING_ACTIONS}
    assert program == review.RESOURCELESS_ACTIONS


def test_the_pack_and_the_program_name_the_same_link_table():
    assert store.link_table_name("prod") == planning.link_table_name("prod")
    assert store.table_arn(STACK, "us-west-2") == planning.link_table_arn(
        ACCOUNT, "prod", "us-west-2"
    )


def test_a_bounded_role_reaches_the_link_table_s_items_and_nothing_else_of_dynamodb():
    table = planning.link_table_arn(ACCOUNT, "prod", "ap-southeast-1")
    for action in planning.LINK_TABLE_ITEM_ACTIONS:
        assert evaluate(Request(action, table), [EVERYTHING], BOUNDARY) is Decision.ALLOW
    for action in ("dynamodb:UpdateTable", "dynamodb:DeleteTable", "dynamodb:UpdateTimeToLive"):
        assert not allowed(Request(action, table), [EVERYTHING], BOUNDARY), action
    for other in ("golinks-prod-other", "golinks-staging-links"):
        elsewhere = f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/{other}"
        assert not allowed(Request("dynamodb:GetItem", elsewhere), [EVERYTHING], BOUNDARY)


def test_create_golinks_prod_x_with_star_and_assume_it_gains_nothing_beyond_the_boundary():
    bounded = {"iam:PermissionsBoundary": BOUNDARY_ARN}
    # Without the boundary the role cannot even be created ...
    assert not deploy_may("iam:CreateRole", NEW_ROLE)
    # ... with it, it can, and may be given * on * and be assumed (PowerUserAccess has sts) ...
    assert deploy_may("iam:CreateRole", NEW_ROLE, **bounded)
    assert deploy_may("iam:PutRolePolicy", NEW_ROLE, **bounded)
    assert deploy_may("iam:UpdateAssumeRolePolicy", NEW_ROLE)
    assert deploy_may("sts:AssumeRole", NEW_ROLE)
    # ... but as that role, nothing an administrator could do is allowed.
    for request in access.what_a_bounded_role_must_not_do(STACK):
        assert evaluate(request, [EVERYTHING], BOUNDARY) is Decision.IMPLICIT_DENY, request
    # and the boundary cannot be taken off, swapped or rewritten.
    assert not deploy_may("iam:DeleteRolePermissionsBoundary", NEW_ROLE, **bounded)
    assert not deploy_may(
        "iam:PutRolePermissionsBoundary",
        NEW_ROLE,
        **{"iam:PermissionsBoundary": "arn:aws:iam::aws:policy/AdministratorAccess"},
    )
    assert not deploy_may("iam:CreatePolicyVersion", BOUNDARY_ARN)


@pytest.mark.parametrize(("what", "request_"), access.escalation_attempts(STACK), ids=str)
def test_every_escalation_attempt_is_denied(what, request_):
    assert not allowed(request_, DEPLOY), f"the deploy role may {what}"


@pytest.mark.parametrize(
    "action",
    [
        "iam:UpdateOpenIDConnectProviderThumbprint",
        "iam:TagOpenIDConnectProvider",
        "iam:AddClientIDToOpenIDConnectProvider",
    ],
)
def test_the_identity_provider_is_explicitly_an_administrators(action):
    provider = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
    assert evaluate(Request(action, provider), DEPLOY) is Decision.EXPLICIT_DENY


def test_a_failover_may_rewrite_the_publisher_s_policy():
    """The publisher's policy names the primary region's bucket, so a failover rewrites it."""
    publisher = f"arn:aws:iam::{ACCOUNT}:role/golinks-prod-publish"
    assert deploy_may("iam:PutRolePolicy", publisher, **{"iam:PermissionsBoundary": BOUNDARY_ARN})


def test_roles_are_passed_only_to_the_services_that_use_them():
    function_role = f"arn:aws:iam::{ACCOUNT}:role/golinks-prod-euw1-redirect"
    assert deploy_may(
        "iam:PassRole", function_role, **{"iam:PassedToService": "lambda.amazonaws.com"}
    )
    assert not deploy_may(
        "iam:PassRole", function_role, **{"iam:PassedToService": "ec2.amazonaws.com"}
    )
    deploy_role = f"arn:aws:iam::{ACCOUNT}:role/golinks-prod-deploy"
    assert not deploy_may(
        "iam:PassRole", deploy_role, **{"iam:PassedToService": "lambda.amazonaws.com"}
    )


PREVIEW = [planning.preview_policy(ACCOUNT, "prod", "index/links.json")]
INDEX = f"arn:aws:s3:::golinks-prod-index-eu-west-1-{ACCOUNT}"


@pytest.mark.parametrize("request_", preview.forbidden_reads(STACK), ids=str)
def test_the_preview_role_reads_no_data_and_changes_nothing(request_):
    assert not allowed(request_, PREVIEW)


def test_the_preview_role_reads_configuration_and_the_published_index():
    secret = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:golinks-prod/service-AbCdEf"
    assert allowed(Request("secretsmanager:DescribeSecret", secret), PREVIEW)
    assert not allowed(Request("secretsmanager:GetSecretValue", secret), PREVIEW)
    assert allowed(Request("s3:GetObject", f"{INDEX}/index/links.json"), PREVIEW)  # link diff
    assert allowed(Request("s3:GetBucketVersioning", INDEX), PREVIEW)
    assert not allowed(Request("s3:GetBucketVersioning", "arn:aws:s3:::someone-else"), PREVIEW)
    assert allowed(Request("elasticache:DescribeGlobalReplicationGroups", "*"), PREVIEW)
