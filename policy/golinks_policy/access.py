"""Who may do what: the deploy role cannot make itself an administrator, yet can deploy.

Every role the program creates for its workloads carries the stack's role
boundary; the deploy role may create and edit this stack's roles only with
that boundary, and may not remove or rewrite it, nor touch the roles CI
assumes or the GitHub identity provider. These policies evaluate the deploy
role's real documents with the IAM evaluator (iam.py).
"""

from __future__ import annotations

from . import store
from .iam import MANAGED_POLICIES, Request, allowed, evaluate
from .model import Resource, Stack, as_list, statements, violation
from .types import ROLE, ROLE_POLICY

POLICY = "aws:iam/policy:Policy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
OIDC_PROVIDER = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
#: The service-linked role DynamoDB creates with an account's first global table.
DYNAMODB_REPLICATION = "replication.dynamodb.amazonaws.com"
ADMINISTRATOR = "arn:aws:iam::aws:policy/AdministratorAccess"

#: Requests that carry the role's boundary as iam:PermissionsBoundary.
BOUNDED_ROLE_CALLS = {
    "iam:CreateRole",
    "iam:PutRolePermissionsBoundary",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
}


def name(stack: str, purpose: str) -> str:
    return f"golinks-{stack}-{purpose}"


def administered_roles(stack: str) -> set[str]:
    """The roles CI assumes that only an administrator changes."""
    return {name(stack, "deploy"), name(stack, "preview")}


def role_arn(d: Stack, role: str) -> str:
    return f"arn:aws:iam::{d.account_id}:role/{role}"


def boundary_arn(d: Stack) -> str:
    return f"arn:aws:iam::{d.account_id}:policy/{name(d.stack, 'role-boundary')}"


def identity_provider_arn(d: Stack) -> str:
    return f"arn:aws:iam::{d.account_id}:oidc-provider/{GITHUB_OIDC_HOST}"


def _boundary(d: Stack) -> Resource | None:
    return next((p for p in d.of_type(POLICY) if p["name"] == name(d.stack, "role-boundary")), None)


def role_documents(d: Stack, role: str) -> list[dict] | None:
    """The identity policies of `role` (None: one of them is a managed policy not known here)."""
    documents = [p.policy_document() for p in d.of_type(ROLE_POLICY) if p["role"] == role]
    for attachment in d.of_type(ATTACHMENT):
        if attachment["role"] == role:
            known = MANAGED_POLICIES.get(attachment["policy_arn"])
            if known is None:
                return None
            documents.append(known)
    return documents


def _call(action: str, resource: str, boundary: str | None = None, **context) -> Request:
    if boundary is not None and action in BOUNDED_ROLE_CALLS:
        context["iam:PermissionsBoundary"] = boundary
    return Request(action, resource, context)


def escalation_attempts(d: Stack) -> list[tuple[str, Request]]:
    """What the deploy role must never be allowed: each a way to more power than the boundary."""
    boundary = boundary_arn(d)
    new_role = role_arn(d, name(d.stack, "x"))
    attempts = [
        ("create a role without the boundary", Request("iam:CreateRole", new_role)),
        (
            "create a role with another boundary",
            _call("iam:CreateRole", new_role, ADMINISTRATOR),
        ),
        (
            "swap a role's boundary",
            _call("iam:PutRolePermissionsBoundary", new_role, ADMINISTRATOR),
        ),
        (
            "remove a role's boundary",
            Request(
                "iam:DeleteRolePermissionsBoundary", new_role, {"iam:PermissionsBoundary": boundary}
            ),
        ),
        ("give an unbounded role a policy", Request("iam:PutRolePolicy", new_role)),
        ("attach a policy to an unbounded role", Request("iam:AttachRolePolicy", new_role)),
        (
            "create a role outside this stack",
            _call("iam:CreateRole", f"arn:aws:iam::{d.account_id}:role/admin", boundary),
        ),
        ("create a user", Request("iam:CreateUser", f"arn:aws:iam::{d.account_id}:user/x")),
        (
            "create a managed policy",
            Request("iam:CreatePolicy", f"arn:aws:iam::{d.account_id}:policy/x"),
        ),
    ]
    for action in (
        "iam:CreatePolicyVersion",
        "iam:SetDefaultPolicyVersion",
        "iam:DeletePolicy",
        "iam:DeletePolicyVersion",
    ):
        attempts.append(("rewrite the boundary", Request(action, boundary)))
    for role in sorted(administered_roles(d.stack)):
        for action in (
            "iam:PutRolePolicy",
            "iam:AttachRolePolicy",
            "iam:UpdateAssumeRolePolicy",
            "iam:PutRolePermissionsBoundary",
            "iam:DeleteRole",
            "iam:PassRole",
        ):
            attempts.append((f"change {role}", _call(action, role_arn(d, role), boundary)))
    for action in (
        "iam:UpdateOpenIDConnectProviderThumbprint",
        "iam:TagOpenIDConnectProvider",
        "iam:UntagOpenIDConnectProvider",
        "iam:AddClientIDToOpenIDConnectProvider",
        "iam:RemoveClientIDFromOpenIDConnectProvider",
        "iam:DeleteOpenIDConnectProvider",
        "iam:CreateOpenIDConnectProvider",
    ):
        attempts.append(
            ("change the GitHub identity provider", Request(action, identity_provider_arn(d)))
        )
    return attempts


def what_a_bounded_role_must_not_do(d: Stack) -> list[Request]:
    """A role created with the boundary and `*` on `*` still cannot do any of these."""
    account = d.account_id
    return [
        Request("iam:CreateRole", f"arn:aws:iam::{account}:role/admin"),
        Request("iam:AttachRolePolicy", role_arn(d, name(d.stack, "deploy"))),
        Request("iam:PutRolePolicy", role_arn(d, name(d.stack, "x"))),
        Request("iam:CreateAccessKey", f"arn:aws:iam::{account}:user/x"),
        Request("sts:AssumeRole", f"arn:aws:iam::{account}:role/admin"),
        Request("s3:GetObject", "arn:aws:s3:::someone-elses-bucket/data"),
        Request(
            "secretsmanager:GetSecretValue", f"arn:aws:secretsmanager:eu-west-1:{account}:secret:db"
        ),
        Request("kms:Decrypt", f"arn:aws:kms:eu-west-1:{account}:key/x"),
        Request("ec2:RunInstances", "*"),
        Request("organizations:LeaveOrganization", "*"),
    ]


def _deploy_role(d: Stack) -> tuple[Resource | None, list[dict] | None]:
    deploy = name(d.stack, "deploy")
    role = next((r for r in d.of_type(ROLE) if r["name"] == deploy), None)
    return role, role_documents(d, deploy)


def roles_carry_the_boundary(d: Stack) -> list[str]:
    """Every role but the ones CI assumes carries the stack's role boundary."""
    boundary = _boundary(d)
    if boundary is None:
        return [f"{d.stack}: no {name(d.stack, 'role-boundary')} policy"]
    violations = []
    for role in d.of_type(ROLE):
        if (
            role["name"] not in administered_roles(d.stack)
            and role["permissions_boundary"] != boundary["arn"]
        ):
            violations.append(violation(role, "does not carry the stack's role boundary"))
    return violations


def roles_stay_within_the_boundary(d: Stack) -> list[str]:
    """What a bounded role's policies grant, its boundary allows (else AWS silently refuses)."""
    boundary = _boundary(d)
    if boundary is None:
        return []
    document = boundary.policy_document()
    bounded = {r["name"] for r in d.of_type(ROLE) if r["name"] not in administered_roles(d.stack)}
    violations = []
    for policy in d.of_type(ROLE_POLICY):
        if policy["role"] not in bounded:
            continue
        for statement in statements(policy.policy_document()):
            if statement.get("Effect") != "Allow":
                continue
            for action in as_list(statement.get("Action", [])):
                for resource in as_list(statement.get("Resource", [])):
                    if not allowed(Request(action, resource), [document]):
                        violations.append(
                            violation(
                                policy, f"{action} on {resource} is outside the role boundary"
                            )
                        )
    return violations


def deploy_role_cannot_escalate(d: Stack) -> list[str]:
    """The deploy role can neither create nor become a role beyond the boundary."""
    role, documents = _deploy_role(d)
    if role is None:
        return [f"{d.stack}: no {name(d.stack, 'deploy')} role"]
    if documents is None:
        return [violation(role, "has a managed policy whose content is not known here")]
    violations = [
        violation(role, f"may {what}: {request}")
        for what, request in escalation_attempts(d)
        if allowed(request, documents)
    ]
    boundary = _boundary(d)
    if boundary is not None:
        everything = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        violations.extend(
            violation(boundary, f"a role with * on * and this boundary may {request}")
            for request in what_a_bounded_role_must_not_do(d)
            if allowed(request, [everything], boundary.policy_document())
        )
    return violations


def _passed_to(role: Resource) -> str | None:
    for statement in statements(role.policy_document("assume_role_policy")):
        service = (statement.get("Principal") or {}).get("Service")
        if service:
            return as_list(service)[0]
    return None


def deploy_calls(d: Stack) -> list[tuple[Resource, Request]]:
    """The IAM calls `pulumi up`, `refresh` and `destroy` make for the stack's IAM resources."""
    roles = {r["name"]: r for r in d.of_type(ROLE)}
    administered = administered_roles(d.stack)
    calls: list[tuple[Resource, Request]] = []

    def add(resource, actions, target, boundary=None, **context):
        calls.extend((resource, _call(a, target, boundary, **context)) for a in actions)

    for name_, role in roles.items():
        arn = role_arn(d, name_)
        add(role, ["iam:GetRole", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies"], arn)
        if name_ in administered:
            continue
        add(
            role,
            [
                "iam:CreateRole",
                "iam:TagRole",
                "iam:UpdateRole",
                "iam:UpdateAssumeRolePolicy",
                "iam:ListInstanceProfilesForRole",
                "iam:DeleteRole",
            ],
            arn,
            role["permissions_boundary"],
        )
        service = _passed_to(role)
        if service:
            add(role, ["iam:PassRole"], arn, **{"iam:PassedToService": service})
    for policy in d.of_type(ROLE_POLICY):
        role = roles.get(policy["role"])
        arn = role_arn(d, policy["role"])
        add(policy, ["iam:GetRolePolicy"], arn)
        if policy["role"] not in administered:
            add(
                policy,
                ["iam:PutRolePolicy", "iam:DeleteRolePolicy"],
                arn,
                role["permissions_boundary"] if role else None,
            )
    for attachment in d.of_type(ATTACHMENT):
        role = roles.get(attachment["role"])
        if attachment["role"] not in administered:
            add(
                attachment,
                ["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
                role_arn(d, attachment["role"]),
                role["permissions_boundary"] if role else None,
            )
    boundary = _boundary(d)
    if boundary is not None:
        add(
            boundary,
            ["iam:GetPolicy", "iam:GetPolicyVersion", "iam:ListPolicyVersions"],
            boundary_arn(d),
        )
    for provider in d.of_type(OIDC_PROVIDER):
        add(provider, ["iam:GetOpenIDConnectProvider"], identity_provider_arn(d))
    for table in store.link_tables(d):
        calls.extend((table, request) for request in link_table_calls(d, table))
    return calls


#: What the AWS provider calls on each replica of a global table to create, refresh,
#: tag, protect and update it.
TABLE_CALLS = [
    "dynamodb:CreateTable",
    "dynamodb:DescribeTable",
    "dynamodb:UpdateTable",
    "dynamodb:DescribeContinuousBackups",
    "dynamodb:UpdateContinuousBackups",
    "dynamodb:DescribeTimeToLive",
    "dynamodb:ListTagsOfResource",
    "dynamodb:TagResource",
    "dynamodb:UntagResource",
]
#: What AWS checks in a region where a replica is added (global tables 2019.11.21,
#: "DynamoDB global tables security"): the replica is filled by a scan and writes.
REPLICA_ADDITION = [
    "dynamodb:CreateTableReplica",
    "dynamodb:Scan",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
    "dynamodb:PutItem",
    "dynamodb:GetItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
]
#: What removing a replica, or the table, takes in its region.
TABLE_REMOVAL = ["dynamodb:DeleteTable", "dynamodb:DeleteTableReplica"]


def link_table_calls(d: Stack, table: Resource) -> list[Request]:
    """`pulumi up`, `refresh` and (for a disposable stack) `destroy` of the global table."""
    home, *replicas = store.table_regions(table)
    calls = [
        Request(action, store.table_arn(d, region))
        for region in (home, *replicas)
        for action in TABLE_CALLS
    ]
    calls += [
        Request(action, store.table_arn(d, region))
        for region in replicas
        for action in REPLICA_ADDITION
    ]
    if replicas:
        calls.append(
            Request(
                "iam:CreateServiceLinkedRole",
                f"arn:aws:iam::{d.account_id}:role/aws-service-role/{DYNAMODB_REPLICATION}/"
                "AWSServiceRoleForDynamoDBReplication",
                {"iam:AWSServiceName": DYNAMODB_REPLICATION},
            )
        )
    if d.facts.disposable:
        calls += [
            Request(action, store.table_arn(d, region))
            for region in (home, *replicas)
            for action in TABLE_REMOVAL
        ]
    return calls


def link_table_attempts(d: Stack) -> list[tuple[str, Request]]:
    """What the deploy role must never do with the links: touch another table, enable TTL
    (docs/dynamodb-store.md), open, export or copy the table and, on a lasting stack,
    delete the table, a replica or a backup (an administrator's, like the bootstrap)."""
    own = [store.table_arn(d, region) for region in store.stack_regions(d)]
    other = f"arn:aws:dynamodb:{d.facts.primary_region}:{d.account_id}:table"
    attempts = [
        ("read another table", Request("dynamodb:Scan", f"{other}/someone-elses")),
        ("delete another table", Request("dynamodb:DeleteTable", f"{other}/someone-elses")),
        (
            "create a table beside the links",
            Request("dynamodb:CreateTable", f"{other}/{store.link_table_name(d.stack)}-copy"),
        ),
        ("open the links to other accounts", Request("dynamodb:PutResourcePolicy", own[0])),
        ("export the links", Request("dynamodb:ExportTableToPointInTime", own[0])),
        ("restore the links elsewhere", Request("dynamodb:RestoreTableToPointInTime", own[0])),
        *(("enable TTL on the links", Request("dynamodb:UpdateTimeToLive", arn)) for arn in own),
    ]
    if not d.facts.disposable:
        attempts += [
            (f"delete the lasting links ({action})", Request(action, arn))
            for arn in own
            for action in TABLE_REMOVAL
        ]
        attempts.append(
            ("delete a backup of the links", Request("dynamodb:DeleteBackup", f"{own[0]}/backup/1"))
        )
    return attempts


def deploy_role_keeps_the_link_table(d: Stack) -> list[str]:
    """The deploy role acts on the stack's link table only, never enables TTL on it, opens,
    exports or copies it, and on a lasting stack cannot delete it or any of its replicas."""
    role, documents = _deploy_role(d)
    if role is None or documents is None:
        return []  # deploy_role_cannot_escalate names it
    return [
        violation(role, f"may {what}: {request}")
        for what, request in link_table_attempts(d)
        if allowed(request, documents)
    ]


def deploy_role_can_deploy_the_stack(d: Stack) -> list[str]:
    """Every IAM call the stack's own resources need, the deploy role may make."""
    role, documents = _deploy_role(d)
    if role is None or documents is None:
        return []  # deploy_role_cannot_escalate names it
    return [
        violation(resource, f"the deploy role is {evaluate(request, documents).value}: {request}")
        for resource, request in deploy_calls(d)
        if not allowed(request, documents)
    ]
