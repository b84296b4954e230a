"""The CI/CD workflows: linted (zizmor, JSON schema) and held to the delivery policies.

GitHub Actions cannot run here. These tests lint the real workflows and composite
actions, check the properties the delivery design relies on, and break copies of
them to show the checks fail when a workflow regresses.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
GITHUB = REPO / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.yml"))
ACTIONS = sorted((GITHUB / "actions").glob("*/action.yml"))
BIN = Path(sys.executable).parent
ROLE_ACTIONS = ("aws-actions/configure-aws-credentials@", "pulumi/auth-actions@")
PUBLISH_ACTION = "./.github/actions/publish-links"
PULUMI_ACTION = "pulumi/actions@"


def load(path: Path) -> dict:
    document = yaml.safe_load(path.read_text())
    if True in document:  # YAML 1.1 reads `on:` as true
        document["on"] = document.pop(True)
    return document


def workflow(name: str) -> dict:
    return load(GITHUB / "workflows" / name)


def steps_of(path: Path) -> list[dict]:
    document = load(path)
    if "runs" in document:
        return document["runs"]["steps"]
    return [step for job in document["jobs"].values() for step in job.get("steps", [])]


def index_of(steps: list[dict], predicate, what: str) -> int:
    found = [i for i, step in enumerate(steps) if predicate(step)]
    assert len(found) == 1, f"expected exactly one step that {what}, found {len(found)}"
    return found[0]


def runs(text: str):
    return lambda step: text in step.get("run", "")


def uses(prefix: str):
    return lambda step: step.get("uses", "").startswith(prefix)


def pulumi(command: str):
    return lambda step: uses(PULUMI_ACTION)(step) and step.get("with", {}).get("command") == command


def zizmor(directory: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BIN / "zizmor", "--offline", "--min-severity", "medium", "--no-progress", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )


def schema(name: str, *paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", name, *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )


# -- linters ---------------------------------------------------------------------------


def test_zizmor_finds_nothing_at_medium_or_above():
    result = zizmor(GITHUB)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_workflow_and_action_matches_github_s_schemas():
    for name, paths in (
        ("vendor.github-workflows", WORKFLOWS),
        ("vendor.github-actions", ACTIONS),
    ):
        result = schema(name, *paths)
        assert result.returncode == 0, result.stdout + result.stderr


def test_no_policy_file_relaxes_the_pinning_rules():
    # Every action is pinned to a full commit SHA; nothing needs an exception.
    assert not (GITHUB / "zizmor.yml").exists()
    for path in [*WORKFLOWS, *ACTIONS]:
        for step in steps_of(path):
            action = step.get("uses", "")
            if action and not action.startswith("./"):
                ref = action.partition("@")[2]
                assert re.fullmatch("[0-9a-f]{40}", ref), f"{path.name}: {action} is not a SHA"


# -- policies --------------------------------------------------------------------------


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_start_empty_and_tokens_are_minted_only_where_a_role_is_assumed(path):
    document = load(path)
    assert document.get("permissions") == {}, f"{path.name}: top-level permissions must be {{}}"
    for name, job in document["jobs"].items():
        permissions = job.get("permissions")
        assert permissions is not None, f"{path.name}:{name} states its permissions"
        steps = [step.get("uses", "") for step in job.get("steps", [])]
        assumes_role = any(step.startswith(ROLE_ACTIONS) for step in steps) or "uses" in job
        if permissions.get("id-token") == "write":
            assert assumes_role, f"{path.name}:{name} mints OIDC tokens without assuming a role"
        assert "write-all" not in str(permissions)


@pytest.mark.parametrize("path", [*WORKFLOWS, *ACTIONS], ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_long_lived_keys_and_no_expressions_inside_shell(path):
    text = path.read_text()
    for forbidden in ("aws-access-key-id", "aws-secret-access-key", "AWS_SECRET_ACCESS_KEY"):
        assert forbidden not in text, f"{path.name} uses {forbidden}"
    # Roles come from the environment's variables; the composite action takes its input.
    source = "${{ inputs." if path in ACTIONS else "${{ vars."
    for step in steps_of(path):
        assert "${{" not in step.get("run", ""), (
            f"{path.name}: pass values to run steps through env, not ${{{{ }}}}"
        )
        role = step.get("with", {}).get("role-to-assume")
        if role is not None:
            assert role.startswith(source), f"{path.name}: role {role} must come from {source}"


def test_only_one_workflow_deploys_on_push_so_no_pending_deploy_is_dropped():
    # GitHub cancels the older pending run of a concurrency group: safe only when the
    # newer run does all the older would have. So pushes to main start one workflow,
    # and it covers links/ as well as the infrastructure.
    pushed = [path.name for path in WORKFLOWS if "push" in load(path)["on"]]
    assert pushed == ["deploy.yml"]
    deploy = workflow("deploy.yml")
    assert deploy["on"]["push"]["branches"] == ["main"]
    assert "paths" not in deploy["on"]["push"]
    assert not any(p.startswith("links") for p in deploy["on"]["push"]["paths-ignore"])
    assert deploy["concurrency"] == {"group": "deploy", "cancel-in-progress": False}


def test_deploys_go_dev_then_staging_then_prod():
    jobs = workflow("deploy.yml")["jobs"]
    assert (jobs["dev"]["needs"], jobs["staging"]["needs"], jobs["prod"]["needs"]) == (
        "test",
        "dev",
        "staging",
    )
    assert any(step.get("run") == "make test" for step in jobs["test"]["steps"])
    for stack in ("dev", "staging", "prod"):
        assert jobs[stack]["uses"] == "./.github/workflows/reusable-deploy-stack.yml"
        assert jobs[stack]["with"] == {"stack": stack}


def test_a_stack_deploy_checks_updates_all_regions_once_then_publishes_in_its_environment():
    path = GITHUB / "workflows" / "reusable-deploy-stack.yml"
    (job,) = load(path)["jobs"].values()
    assert job["environment"] == "${{ inputs.stack }}"
    steps = job["steps"]
    check = index_of(steps, runs("scripts.datastore_failover check"), "checks primaryRegion")
    up = index_of(steps, pulumi("up"), "runs pulumi up")
    publish = index_of(steps, uses(PUBLISH_ACTION), "publishes the links")
    package = index_of(steps, runs("make package"), "builds the archive")
    assert package < up and check < up < publish
    assert steps[publish]["with"]["role-to-assume"] == "${{ vars.AWS_PUBLISH_ROLE_ARN }}"
    assert "up" not in {s.get("with", {}).get("command") for s in steps[up + 1 :]}


def test_publishing_uploads_then_waits_for_every_region():
    path = GITHUB / "actions" / "publish-links" / "action.yml"
    steps = load(path)["runs"]["steps"]
    outputs = index_of(steps, runs("pulumi stack output --json"), "reads the outputs")
    role = index_of(steps, uses("aws-actions/configure-aws-credentials@"), "assumes the role")
    publish = index_of(steps, runs("scripts.publish_links --stack-outputs"), "publishes")
    assert outputs < role < publish


def test_pull_requests_preview_every_stack_but_forks_get_no_credentials():
    pr = workflow("pull-request.yml")
    assert set(pr["on"]) == {"pull_request"}  # never pull_request_target
    assert "id-token" not in pr["jobs"]["test"]["permissions"]
    preview = pr["jobs"]["preview"]
    assert preview["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    assert preview["environment"] == "${{ matrix.stack }}-preview"
    assert preview["strategy"]["matrix"]["stack"] == ["dev", "staging", "prod"]
    steps = preview["steps"]
    comment = steps[index_of(steps, pulumi("preview"), "runs pulumi preview")]["with"]
    assert comment["comment-on-pr"] is True and comment["edit-pr-comment"] is True
    diff = index_of(steps, runs("functions.links diff --against-s3"), "diffs the links")
    assert "--format markdown" in steps[diff]["run"]
    assert index_of(steps, runs("scripts.pr_comment"), "comments the diff") > diff


def test_failover_is_manual_a_dry_run_by_default_and_changes_nothing_when_dry():
    failover = workflow("datastore-failover.yml")
    assert set(failover["on"]) == {"workflow_dispatch"}
    assert failover["on"]["workflow_dispatch"]["inputs"]["dry-run"]["default"] is True
    assert failover["concurrency"]["group"] == "failover-${{ inputs.stack }}"
    steps = failover["jobs"]["failover"]["steps"]
    promote = index_of(steps, runs("scripts.datastore_failover promote"), "promotes")
    assert '"${execute[@]}"' in steps[promote]["run"] and "DRY_RUN" in steps[promote]["env"]
    proposal = index_of(steps, runs("gh pr create"), "opens the pull request")
    up = index_of(steps, pulumi("up"), "re-points the stack")
    publish = index_of(steps, uses(PUBLISH_ACTION), "republishes")
    assert promote < proposal < up < publish
    for step in steps[promote + 1 :]:
        assert step.get("if") == "${{ !inputs.dry-run }}", f"{step} runs in a dry run"


# -- breaking copies -------------------------------------------------------------------


@pytest.fixture
def copy_of_github(tmp_path) -> Path:
    target = tmp_path / "repo" / ".github"
    shutil.copytree(GITHUB, target)
    (tmp_path / "repo" / ".git").mkdir()  # zizmor's config discovery stops at the repo root
    return target


def rewrite(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("file", "old", "new", "audit"),
    [
        (
            "workflows/pull-request.yml",
            "      - run: make test\n",
            '      - run: make test\n      - run: echo "${{ github.event.pull_request.title }}"\n',
            "template-injection",
        ),
        (
            "actions/publish-links/action.yml",
            '--timeout "$TIMEOUT"',
            "--timeout ${{ inputs.timeout }}",
            "template-injection",
        ),
        (
            "workflows/deploy.yml",
            "    permissions:\n      contents: read\n",
            "    permissions: write-all\n",
            "excessive-permissions",
        ),
        (
            "workflows/pull-request.yml",
            "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2",
            "actions/checkout@v4",
            "unpinned-uses",
        ),
        (
            "workflows/reusable-deploy-stack.yml",
            "pulumi/actions@8e5e406f4007fca908480587cb9893c07090f58d # v7.0.0",
            "pulumi/actions@v7",
            "unpinned-uses",
        ),
        (
            "workflows/pull-request.yml",
            "          persist-credentials: false\n",
            "          fetch-depth: 1\n",
            "artipacked",
        ),
        (
            "workflows/pull-request.yml",
            "  pull_request:\n",
            "  pull_request_target:\n",
            "dangerous-triggers",
        ),
    ],
)
def test_zizmor_catches_a_regressed_workflow(copy_of_github, file, old, new, audit):
    rewrite(copy_of_github / file, old, new)
    result = zizmor(copy_of_github)
    assert result.returncode != 0
    assert audit in result.stdout, result.stdout[-2000:]


def test_the_schema_check_catches_a_misspelt_key(copy_of_github):
    path = copy_of_github / "workflows" / "deploy.yml"
    rewrite(path, "    runs-on: ubuntu-24.04\n", "    run-on: ubuntu-24.04\n")
    result = schema("vendor.github-workflows", path)
    assert result.returncode != 0 and "deploy.yml" in result.stdout


def test_the_policies_catch_a_workflow_without_top_level_permissions(copy_of_github):
    # zizmor stays quiet here (every job states its own), so this is the policy's job.
    path = copy_of_github / "workflows" / "deploy.yml"
    rewrite(path, "permissions: {}\n", "")
    assert zizmor(copy_of_github).returncode == 0
    with pytest.raises(AssertionError, match="top-level permissions must be"):
        test_permissions_start_empty_and_tokens_are_minted_only_where_a_role_is_assumed(path)


def test_the_policies_catch_an_expression_in_a_shell_step(copy_of_github):
    path = copy_of_github / "workflows" / "deploy.yml"
    rewrite(path, "      - run: make test\n", "      - run: make test ${{ github.head_ref }}\n")
    with pytest.raises(AssertionError, match="pass values to run steps through env"):
        test_no_long_lived_keys_and_no_expressions_inside_shell(path)


def test_the_policies_catch_a_dry_run_that_changes_something(copy_of_github, monkeypatch):
    path = copy_of_github / "workflows" / "datastore-failover.yml"
    rewrite(path, "      - run: make package\n        if: ${{ !inputs.dry-run }}\n", "")
    rewrite(path, "      - name: pulumi up", "      - run: make package\n      - name: pulumi up")
    monkeypatch.setattr(sys.modules[__name__], "GITHUB", copy_of_github)
    with pytest.raises(AssertionError, match="runs in a dry run"):
        test_failover_is_manual_a_dry_run_by_default_and_changes_nothing_when_dry()
