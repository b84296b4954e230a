"""The IAM evaluator the access policies rely on follows AWS's evaluation logic."""

from __future__ import annotations

import pytest
from golinks_policy.iam import Decision, Request, allowed, evaluate


def doc(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


ALLOW_ALL = doc({"Effect": "Allow", "Action": "*", "Resource": "*"})


def test_an_explicit_deny_beats_any_allow():
    deny = doc({"Effect": "Deny", "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/*"})
    request = Request("s3:GetObject", "arn:aws:s3:::b/k")
    assert evaluate(request, [ALLOW_ALL, deny]) is Decision.EXPLICIT_DENY
    assert evaluate(Request("s3:PutObject", "arn:aws:s3:::b/k"), [ALLOW_ALL, deny]) is (
        Decision.ALLOW
    )


def test_nothing_is_allowed_unless_a_statement_allows_it():
    only_logs = doc({"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"})
    assert evaluate(Request("s3:GetObject", "x"), [only_logs]) is Decision.IMPLICIT_DENY
    assert evaluate(Request("s3:GetObject", "x"), []) is Decision.IMPLICIT_DENY


def test_actions_match_case_insensitively_with_wildcards_and_not_action():
    power_user = doc({"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "*"})
    assert allowed(Request("S3:getobject", "x"), [power_user])
    assert not allowed(Request("iam:CreateRole", "x"), [power_user])
    question = doc({"Effect": "Allow", "Action": "s3:Get?bject", "Resource": "*"})
    assert allowed(Request("s3:GetObject", "x"), [question])
    assert not allowed(Request("s3:GetObjects", "x"), [question])


def test_resources_match_case_sensitively_with_wildcards_and_not_resource():
    own = doc({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::golinks-prod-*"})
    assert allowed(Request("s3:GetObject", "arn:aws:s3:::golinks-prod-index/k"), [own])
    assert not allowed(Request("s3:GetObject", "arn:aws:s3:::GOLINKS-prod-index/k"), [own])
    assert not allowed(Request("s3:GetObject", "arn:aws:s3:::golinks-dev-index/k"), [own])
    others = doc({"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::secret*"})
    assert not allowed(Request("s3:GetObject", "arn:aws:s3:::secrets/k"), [others])


def test_a_permissions_boundary_caps_what_identity_policies_allow():
    boundary = doc({"Effect": "Allow", "Action": "logs:*", "Resource": "*"})
    assert allowed(Request("logs:PutLogEvents", "x"), [ALLOW_ALL], boundary)
    assert evaluate(Request("iam:CreateRole", "x"), [ALLOW_ALL], boundary) is (
        Decision.IMPLICIT_DENY
    )
    nothing = doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
    assert not allowed(Request("logs:PutLogEvents", "x"), [nothing], boundary)
    denying = doc({"Effect": "Deny", "Action": "logs:PutLogEvents", "Resource": "*"})
    assert evaluate(Request("logs:PutLogEvents", "x"), [ALLOW_ALL], denying) is (
        Decision.EXPLICIT_DENY
    )


BOUNDARY = "arn:aws:iam::1:policy/b"


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        (
            {"StringEquals": {"iam:PermissionsBoundary": BOUNDARY}},
            {"iam:PermissionsBoundary": BOUNDARY},
            True,
        ),
        (
            {"StringEquals": {"iam:PermissionsBoundary": BOUNDARY}},
            {"iam:PermissionsBoundary": "other"},
            False,
        ),
        ({"StringEquals": {"iam:PermissionsBoundary": BOUNDARY}}, {}, False),
        (
            {"StringEquals": {"IAM:permissionsboundary": BOUNDARY}},
            {"iam:PermissionsBoundary": BOUNDARY},
            True,
        ),
        ({"StringNotEquals": {"iam:PermissionsBoundary": BOUNDARY}}, {}, True),
        (
            {"StringNotEquals": {"iam:PermissionsBoundary": BOUNDARY}},
            {"iam:PermissionsBoundary": BOUNDARY},
            False,
        ),
        ({"StringEqualsIfExists": {"iam:PermissionsBoundary": BOUNDARY}}, {}, True),
        (
            {"StringLike": {"aws:SourceArn": "arn:aws:s3:::golinks-*"}},
            {"aws:SourceArn": "arn:aws:s3:::golinks-x"},
            True,
        ),
        (
            {"StringNotLike": {"aws:SourceArn": "arn:aws:s3:::golinks-*"}},
            {"aws:SourceArn": "arn:aws:s3:::golinks-x"},
            False,
        ),
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:cloudfront::1:distribution/*"}},
            {"aws:SourceArn": "arn:aws:cloudfront::1:distribution/E1"},
            True,
        ),
        (
            {"ArnEquals": {"aws:SourceArn": "arn:aws:cloudfront::1:distribution/E1"}},
            {"aws:SourceArn": "arn:aws:cloudfront::1:distribution/E2"},
            False,
        ),
        (
            {"StringEquals": {"iam:PassedToService": ["lambda.amazonaws.com", "s3.amazonaws.com"]}},
            {"iam:PassedToService": "s3.amazonaws.com"},
            True,
        ),
        ({"Null": {"iam:PermissionsBoundary": "true"}}, {}, True),
        ({"Null": {"iam:PermissionsBoundary": "false"}}, {}, False),
        ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "true"}, True),
        (
            {"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}},
            {"aws:TagKeys": ["a", "c"]},
            False,
        ),
        (
            {"ForAnyValue:StringEquals": {"aws:TagKeys": ["a", "b"]}},
            {"aws:TagKeys": ["a", "c"]},
            True,
        ),
        (
            {
                "StringEquals": {
                    "iam:PermissionsBoundary": BOUNDARY,
                    "iam:PassedToService": "s3.amazonaws.com",
                }
            },
            {"iam:PermissionsBoundary": BOUNDARY},
            False,
        ),
    ],
)
def test_conditions(condition, context, expected):
    policy = doc({"Effect": "Allow", "Action": "iam:*", "Resource": "*", "Condition": condition})
    assert allowed(Request("iam:CreateRole", "r", context), [policy]) is expected


def test_what_it_cannot_read_it_refuses_instead_of_guessing():
    variable = doc(
        {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::${aws:username}"}
    )
    with pytest.raises(ValueError, match="policy variables"):
        allowed(Request("s3:GetObject", "arn:aws:s3:::x"), [variable])
    unknown = doc(
        {
            "Effect": "Allow",
            "Action": "s3:*",
            "Resource": "*",
            "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        }
    )
    with pytest.raises(ValueError, match="IpAddress"):
        allowed(Request("s3:GetObject", "x", {"aws:SourceIp": "10.0.0.1"}), [unknown])
