"""A small IAM policy evaluator: is one request allowed by identity policies within a boundary?

It follows AWS's evaluation logic for one account, without resource-based
policies, SCPs or session policies:

- an explicit Deny in any identity policy or in the permissions boundary wins;
- otherwise the request needs an Allow from an identity policy AND, when the
  principal has a permissions boundary, an Allow from the boundary;
- otherwise it is implicitly denied.

Statements match on Action/NotAction (case-insensitive, `*` and `?`
wildcards), Resource/NotResource (case-sensitive wildcards; an ARN pattern
is matched as a whole string) and Condition. The condition operators are the
String*, Arn*, Null and Bool families, with `IfExists` and the `ForAnyValue:` /
`ForAllValues:` set qualifiers. A context key missing from the request makes a
positive operator false and a negated one true, as in AWS. Policy variables
(`${aws:username}`) are not supported and are refused rather than misread.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from .model import as_list, statements


class Decision(Enum):
    ALLOW = "allowed"
    EXPLICIT_DENY = "explicitly denied"
    IMPLICIT_DENY = "not allowed"


@dataclass(frozen=True)
class Request:
    action: str
    """service:Action, e.g. iam:CreateRole."""
    resource: str
    """The ARN acted on ("*" for actions without resource-level permissions)."""
    context: Mapping[str, str | list[str]] = field(default_factory=dict)
    """Condition keys the request carries, e.g. {"iam:PermissionsBoundary": "arn:..."}."""

    def __str__(self) -> str:
        extra = f" with {dict(self.context)}" if self.context else ""
        return f"{self.action} on {self.resource}{extra}"


def _wildcard(pattern: str, value: str, *, ignore_case: bool) -> bool:
    if "${" in pattern:
        raise ValueError(f"policy variables are not supported: {pattern}")
    if ignore_case:
        pattern, value = pattern.lower(), value.lower()
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.S) is not None


def _matches_any(patterns, value: str, *, ignore_case: bool) -> bool:
    return any(_wildcard(p, value, ignore_case=ignore_case) for p in as_list(patterns))


def _compare(operator: str, expected: str, actual: str) -> bool:
    if operator in ("StringEquals", "ArnEquals"):
        return expected == actual
    if operator == "StringEqualsIgnoreCase":
        return expected.lower() == actual.lower()
    if operator in ("StringLike", "ArnLike"):
        return _wildcard(expected, actual, ignore_case=False)
    if operator == "Bool":
        return expected.lower() == actual.lower()
    raise ValueError(f"condition operator {operator} is not supported")


_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def _condition_holds(operator: str, key: str, expected, context: Mapping) -> bool:
    qualifier, _, operator = operator.rpartition(":")
    if_exists = operator.endswith("IfExists")
    operator = operator.removesuffix("IfExists")
    present = {k.lower(): v for k, v in context.items()}
    actual = present.get(key.lower())
    expected = [str(v) for v in as_list(expected)]
    if operator == "Null":
        return (actual is None) == (expected[0].lower() == "true")
    if actual is None:
        return if_exists or operator in _NEGATED
    values = [str(v) for v in as_list(actual)]
    negated = operator in _NEGATED
    base = _NEGATED.get(operator, operator)

    def one(value: str) -> bool:
        hit = any(_compare(base, e, value) for e in expected)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(one(v) for v in values)
    return any(one(v) for v in values)  # single-valued keys, and ForAnyValue


def _applies(statement: dict, request: Request) -> bool:
    if "Action" in statement:
        if not _matches_any(statement["Action"], request.action, ignore_case=True):
            return False
    elif _matches_any(statement.get("NotAction", []), request.action, ignore_case=True):
        return False
    if "Resource" in statement:
        if not _matches_any(statement["Resource"], request.resource, ignore_case=False):
            return False
    elif _matches_any(statement.get("NotResource", []), request.resource, ignore_case=False):
        return False
    return all(
        _condition_holds(operator, key, expected, request.context)
        for operator, conditions in (statement.get("Condition") or {}).items()
        for key, expected in conditions.items()
    )


def _effects(documents: Iterable[dict], request: Request) -> set[str]:
    return {
        statement.get("Effect")
        for document in documents
        for statement in statements(document)
        if _applies(statement, request)
    }


def evaluate(request: Request, identity: Iterable[dict], boundary: dict | None = None) -> Decision:
    """The decision for `request` by a principal with `identity` policies and `boundary`."""
    identity = list(identity)
    granted = _effects(identity, request)
    bounded = _effects([boundary], request) if boundary is not None else {"Allow"}
    if "Deny" in granted | bounded:
        return Decision.EXPLICIT_DENY
    if "Allow" in granted and "Allow" in bounded:
        return Decision.ALLOW
    return Decision.IMPLICIT_DENY


def allowed(request: Request, identity: Iterable[dict], boundary: dict | None = None) -> bool:
    return evaluate(request, identity, boundary) is Decision.ALLOW


#: AWS's PowerUserAccess managed policy: everything but IAM, Organizations and Account,
#: plus service-linked roles and a few reads.
POWER_USER_ACCESS = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "NotAction": ["iam:*", "organizations:*", "account:*"],
            "Resource": "*",
        },
        {
            "Effect": "Allow",
            "Action": [
                "account:GetAccountInformation",
                "account:ListRegions",
                "iam:CreateServiceLinkedRole",
                "iam:DeleteServiceLinkedRole",
                "iam:ListRoles",
                "organizations:DescribeOrganization",
            ],
            "Resource": "*",
        },
    ],
}
#: The AWS managed policies the evaluator knows the content of, by ARN.
MANAGED_POLICIES = {"arn:aws:iam::aws:policy/PowerUserAccess": POWER_USER_ACCESS}
