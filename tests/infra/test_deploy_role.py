"""The deploy role may make every IAM change a failover's `pulumi up` makes, and deploy,
refresh and (on a disposable stack only) tear down the link table, but not escape it."""

from __future__ import annotations

import pytest
from golinks_policy import access, store
from golinks_policy.iam import Decision, Request, allowed, evaluate

from . import policies
from .conftest import DYNAMODB
from .harness import Deployment, deploy
from .policies import ROLE, ROLE_POLICY, stack_of

DYNAMODB_SLR = "replication.dynamodb.amazonaws.com"

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


# -- the DynamoDB link store ------------------------------------------------------------


@pytest.fixture(scope="module")
def dynamodb_promoted(archive):
    return deploy("prod", archive, {**DYNAMODB, "golinks:primaryRegion": "us-west-2"})


def deploy_documents(d: Deployment) -> list[dict]:
    return access.role_documents(stack_of(d), f"golinks-{d.stack}-deploy")


def test_the_deploy_role_may_create_refresh_and_update_every_stack_s_link_table(
    dynamodb_deployments,
):
    for d in dynamodb_deployments.values():
        stack = stack_of(d)
        (table,) = store.link_tables(stack)
        calls = access.link_table_calls(stack, table)
        assert [str(c) for c in calls if not allowed(c, deploy_documents(d))] == []
        # A replica is added in its region by a scan and writes (AWS's list), and the first
        # global table of an account creates DynamoDB's replication role.
        assert Request("dynamodb:CreateTableReplica", store.table_arn(stack, "us-west-2")) in calls
        assert any(c.context.get("iam:AWSServiceName") == DYNAMODB_SLR for c in calls)
        # Only the disposable dev stack's deploy role tears the table down.
        removals = {c.action for c in calls} & {"dynamodb:DeleteTable"}
        assert bool(removals) == stack.facts.disposable, d.stack


def test_a_lasting_stack_s_deploy_role_cannot_delete_the_links_or_open_them(
    dynamodb_deployments,
):
    prod, dev = (stack_of(dynamodb_deployments[s]) for s in ("prod", "dev"))
    documents = deploy_documents(dynamodb_deployments["prod"])
    for region in ("eu-west-1", "us-west-2", "ap-southeast-1"):
        arn = store.table_arn(prod, region)
        for action in ("dynamodb:DeleteTable", "dynamodb:DeleteTableReplica"):
            assert evaluate(Request(action, arn), documents) is Decision.EXPLICIT_DENY
        assert (
            evaluate(Request("dynamodb:UpdateTimeToLive", arn), documents) is Decision.EXPLICIT_DENY
        )
    for what, request in access.link_table_attempts(prod):
        assert not allowed(request, documents), what
    # dev is disposable: its deploy role tears the table down, yet never enables TTL on it.
    dev_documents = deploy_documents(dynamodb_deployments["dev"])
    dev_table = store.table_arn(dev, "us-west-2")
    assert allowed(Request("dynamodb:DeleteTable", dev_table), dev_documents)
    assert not allowed(Request("dynamodb:UpdateTimeToLive", dev_table), dev_documents)
    # Another stack's table is not this deploy role's, whatever its name.
    assert not allowed(
        Request("dynamodb:UpdateTable", store.table_arn(dev, "eu-west-1")), documents
    )


def test_escalation_stays_out_of_reach_with_the_table(dynamodb_deployments):
    d = dynamodb_deployments["prod"]
    documents = deploy_documents(d)
    assert [w for w, r in access.escalation_attempts(stack_of(d)) if allowed(r, documents)] == []


def test_pitr_off_is_refused_by_the_pack_as_iam_cannot_tell_it_from_on(dynamodb_deployments):
    """UpdateContinuousBackups turns PITR on (a new replica needs it) and off alike, with
    no condition key between them: the mandatory policy refuses an update that turns it
    off, and the deploy role runs every update with the pack."""
    d = dynamodb_deployments["prod"]
    arn = store.table_arn(stack_of(d), "eu-west-1")
    assert allowed(Request("dynamodb:UpdateContinuousBackups", arn), deploy_documents(d))
    off = d.broken(
        lambda c: c.one("aws:dynamodb/table:Table").inputs.update(
            point_in_time_recovery={"enabled": False}
        )
    )
    assert policies.check(store.link_table_is_durable_and_everywhere, off)


def test_the_deploy_role_may_switch_prod_to_dynamodb(deployments, dynamodb_deployments):
    documents = deploy_documents(dynamodb_deployments["prod"])
    requests = changes(deployments["prod"], dynamodb_deployments["prod"])
    assert any(r.action == "iam:PutRolePolicy" for r in requests)
    assert [str(r) for r in requests if not allowed(r, documents)] == []


def test_a_dynamodb_failover_moves_the_writer_and_leaves_the_table(
    dynamodb_deployments, dynamodb_promoted
):
    before = dynamodb_deployments["prod"]
    table = before.one("aws:dynamodb/table:Table")
    moved = dynamodb_promoted.one("aws:dynamodb/table:Table")
    assert (moved.provider_region, moved.inputs) == (table.provider_region, table.inputs)
    requests = changes(before, dynamodb_promoted)
    roles = {r.resource.rsplit("/", 1)[1] for r in requests}
    assert {"golinks-prod-euw1-sync", "golinks-prod-usw2-sync"} <= roles
    documents = deploy_documents(dynamodb_promoted)
    assert [str(r) for r in requests if not allowed(r, documents)] == []
    # The writer moved, and every rule (only us-west-2's sync writes now) holds.
    assert policies.report(dynamodb_promoted) == {}
