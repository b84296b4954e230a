"""The targeted failover update: every change outside the unreachable region, nothing in it."""

from __future__ import annotations

import json

import pytest

from components.failover_plan import FailoverBlocked, failover_targets, urn_type
from scripts import datastore_failover

STACK = "urn:pulumi:prod::golinks::pulumi:pulumi:Stack::golinks-prod"


def urn(type_: str, name: str) -> str:
    return f"urn:pulumi:prod::golinks::{type_}::{name}"


def provider(region: str) -> tuple[dict, str]:
    """A provider step (as a child of the stack) and the reference its resources carry."""
    provider_urn = urn("pulumi:pulumi:Stack$pulumi:providers:aws", f"aws-{region}")
    state = {"urn": provider_urn, "type": "pulumi:providers:aws", "inputs": {"region": region}}
    return {"op": "same", "urn": provider_urn, "newState": state}, f"{provider_urn}::id-{region}"


EU, EU_REF = provider("eu-west-1")
US, US_REF = provider("us-west-2")


def step(op: str, name: str, ref: str | None, **new) -> dict:
    type_ = "aws:lambda/function:Function" if ref else "cloudflare:index/loadBalancer:LoadBalancer"
    state = {"urn": urn(type_, name), "type": type_, "provider": ref or "", **new}
    old = None if op == "create" else state
    return {
        "op": op,
        "urn": state["urn"],
        "oldState": old,
        "newState": state if op != "delete" else None,
    }


def preview(*steps: dict) -> dict:
    return {
        "steps": [
            {"op": "same", "urn": STACK, "newState": {"type": "pulumi:pulumi:Stack"}},
            EU,
            US,
            *steps,
        ]
    }


def test_changes_outside_the_region_are_targeted_and_its_own_are_deferred():
    plan = failover_targets(
        preview(
            step("create", "sync-us", US_REF),
            step("update", "balancer", None),
            step("delete", "sync-eu", EU_REF),
            step("create", "lag-eu", EU_REF),
            step("same", "redirect-eu", EU_REF),
        ),
        ["eu-west-1"],
    )
    assert plan.targets == [
        STACK,
        urn("aws:lambda/function:Function", "sync-us"),
        urn("cloudflare:index/loadBalancer:LoadBalancer", "balancer"),
    ]
    assert plan.deferred == [
        ("delete", urn("aws:lambda/function:Function", "sync-eu")),
        ("create", urn("aws:lambda/function:Function", "lag-eu")),
    ]


def test_a_replacement_that_moves_out_of_the_region_cannot_be_split():
    moving = step("replace", "replication", US_REF)
    moving["oldState"] = {**moving["oldState"], "provider": EU_REF}
    with pytest.raises(
        FailoverBlocked, match=r"replace .*replication spans \['eu-west-1', 'us-west-2'\]"
    ):
        failover_targets(preview(moving), ["eu-west-1"])


def test_a_target_created_under_something_left_out_is_refused():
    parent = step("create", "component-eu", EU_REF)
    child = step("create", "child-us", US_REF, parent=parent["urn"])
    with pytest.raises(FailoverBlocked, match=r"child-us needs .*component-eu"):
        failover_targets(preview(parent, child), ["eu-west-1"])


@pytest.mark.parametrize(
    ("document", "regions", "message"),
    [
        ({"steps": "nope"}, ["eu-west-1"], "not the output of `pulumi preview --json`"),
        ({"steps": [{"op": "same"}]}, ["eu-west-1"], "no steps with op and urn"),
        (preview(), ["sa-east-1"], r"\['sa-east-1'\]: no provider of this stack"),
        (
            {"steps": [EU, step("update", "orphan", US_REF)]},
            ["eu-west-1"],
            r"its provider .* is not in the preview",
        ),
    ],
)
def test_what_cannot_be_planned_is_refused_with_the_reason(document, regions, message):
    with pytest.raises(FailoverBlocked, match=message):
        failover_targets(document, regions)


def test_provider_regions_come_from_the_exported_state_when_the_preview_omits_them():
    document = {"steps": [step("create", "sync-us", US_REF), step("delete", "sync-eu", EU_REF)]}
    exported = {"deployment": {"resources": [EU["newState"], US["newState"]]}}
    plan = failover_targets(document, ["eu-west-1"], exported)
    assert plan.targets == [urn("aws:lambda/function:Function", "sync-us")]
    assert plan.deferred == [("delete", urn("aws:lambda/function:Function", "sync-eu"))]


def test_urn_types_are_read_through_parent_types():
    assert urn_type(EU["urn"]) == "pulumi:providers:aws"
    assert urn_type("not-a-urn") == ""


def test_the_runbook_command_prints_one_target_per_line(tmp_path, capsys):
    path = tmp_path / "preview.json"
    path.write_text(
        json.dumps(preview(step("create", "sync-us", US_REF), step("delete", "sync-eu", EU_REF)))
    )
    assert (
        datastore_failover.main(["targets", "--preview", str(path), "--unreachable", "eu-west-1"])
        == 0
    )
    out, err = capsys.readouterr()
    assert out.splitlines() == [STACK, urn("aws:lambda/function:Function", "sync-us")]
    assert "delete urn:pulumi:prod::golinks::aws:lambda/function:Function::sync-eu" in err


def test_the_runbook_command_refuses_a_blocked_plan_and_bad_input(tmp_path, capsys):
    path = tmp_path / "preview.json"
    path.write_text(json.dumps({"steps": []}))
    assert (
        datastore_failover.main(["targets", "--preview", str(path), "--unreachable", "eu-west-1"])
        == 1
    )
    assert "no provider of this stack" in capsys.readouterr().err
    for broken in ("{not json", None):
        if broken is None:
            path.unlink()
        else:
            path.write_text(broken)
        with pytest.raises(SystemExit) as usage:
            datastore_failover.main(
                ["targets", "--preview", str(path), "--unreachable", "eu-west-1"]
            )
        assert usage.value.code == 2
