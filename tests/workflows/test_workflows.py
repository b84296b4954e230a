"""The CI/CD workflows: linted (zizmor, JSON schema) and held to the delivery policies.

GitHub Actions cannot run here. These tests lint the real workflows, check the
properties the delivery design relies on, and break copies of them to show the
checks fail when a workflow regresses.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
GITHUB = REPO / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent
ROLE_ACTIONS = ("aws-actions/configure-aws-credentials@", "pulumi/auth-actions@")


def load(path: Path) -> dict:
    workflow = yaml.safe_load(path.read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads `on:` as true
    return workflow


def zizmor(directory: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BIN / "zizmor", "--offline", "--min-severity", "medium", "--no-progress", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )


def schema(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_zizmor_finds_nothing_at_medium_or_above():
    result = zizmor(GITHUB)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_workflow_matches_the_github_workflow_schema():
    result = schema(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_start_empty_and_tokens_are_minted_only_where_a_role_is_assumed(path):
    workflow = load(path)
    assert workflow.get("permissions") == {}, f"{path.name}: top-level permissions must be {{}}"
    for name, job in workflow["jobs"].items():
        permissions = job.get("permissions")
        assert permissions is not None, f"{path.name}:{name} states its permissions"
        steps = [step.get("uses", "") for step in job.get("steps", [])]
        assumes_role = any(uses.startswith(ROLE_ACTIONS) for uses in steps) or "uses" in job
        if permissions.get("id-token") == "write":
            assert assumes_role, f"{path.name}:{name} mints OIDC tokens without assuming a role"
        assert "write-all" not in str(permissions)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_long_lived_keys_and_no_expressions_inside_shell(path):
    text = path.read_text()
    for forbidden in ("aws-access-key-id", "aws-secret-access-key", "AWS_SECRET_ACCESS_KEY"):
        assert forbidden not in text, f"{path.name} uses {forbidden}"
    for name, job in load(path)["jobs"].items():
        for step in job.get("steps", []):
            assert "${{" not in step.get("run", ""), (
                f"{path.name}:{name}: pass values to run steps through env, not ${{{{ }}}}"
            )
        for step in job.get("steps", []):
            if step.get("uses", "").startswith("aws-actions/configure-aws-credentials@"):
                assert step["with"]["role-to-assume"].startswith("${{ vars."), (
                    "roles come from variables"
                )


def test_deploys_go_dev_then_staging_then_prod_one_at_a_time():
    deploy = load(GITHUB / "workflows" / "deploy.yml")
    jobs = deploy["jobs"]
    assert (jobs["dev"]["needs"], jobs["staging"]["needs"], jobs["prod"]["needs"]) == (
        "test",
        "dev",
        "staging",
    )
    for stack in ("dev", "staging", "prod"):
        assert jobs[stack]["uses"] == "./.github/workflows/reusable-deploy-stack.yml"
        assert jobs[stack]["with"] == {"stack": stack}
    assert deploy["on"]["push"]["branches"] == ["main"]
    for name in ("deploy.yml", "publish-links.yml", "datastore-failover.yml"):
        assert load(GITHUB / "workflows" / name)["concurrency"] == {
            "group": "deploy",
            "cancel-in-progress": False,
        }


def test_each_stack_job_runs_in_its_github_environment():
    deploy = load(GITHUB / "workflows" / "reusable-deploy-stack.yml")
    publish = load(GITHUB / "workflows" / "reusable-publish-links.yml")
    assert deploy["jobs"]["up"]["environment"] == "${{ inputs.stack }}"
    assert deploy["jobs"]["publish"]["needs"] == "up"
    assert publish["jobs"]["publish"]["environment"] == "${{ inputs.stack }}"
    run = " ".join(step.get("run", "") for step in publish["jobs"]["publish"]["steps"])
    assert "scripts.publish_links --stack-outputs" in run


def test_pull_requests_preview_every_stack_but_forks_get_no_credentials():
    pr = load(GITHUB / "workflows" / "pull-request.yml")
    assert set(pr["on"]) == {"pull_request"}  # never pull_request_target
    assert (
        "permissions" in pr["jobs"]["test"] and "id-token" not in pr["jobs"]["test"]["permissions"]
    )
    preview = pr["jobs"]["preview"]
    assert preview["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    assert preview["environment"] == "${{ matrix.stack }}-preview"
    assert preview["strategy"]["matrix"]["stack"] == ["dev", "staging", "prod"]
    pulumi = next(s for s in preview["steps"] if s.get("uses", "").startswith("pulumi/actions@"))
    assert pulumi["with"]["comment-on-pr"] is True and pulumi["with"]["edit-pr-comment"] is True
    runs = " ".join(step.get("run", "") for step in preview["steps"])
    assert "functions.links diff --against-s3" in runs and "scripts.pr_comment" in runs


def test_failover_is_manual_and_a_dry_run_by_default():
    failover = load(GITHUB / "workflows" / "datastore-failover.yml")
    assert set(failover["on"]) == {"workflow_dispatch"}
    assert failover["on"]["workflow_dispatch"]["inputs"]["dry-run"]["default"] is True
    steps = failover["jobs"]["failover"]["steps"]
    assert any("scripts.datastore_failover" in step.get("run", "") for step in steps)


# -- breaking copies ------------------------------------------------------------------


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
    ("workflow", "old", "new", "audit"),
    [
        (
            "pull-request.yml",
            "      - run: make test\n",
            '      - run: make test\n      - run: echo "${{ github.event.pull_request.title }}"\n',
            "template-injection",
        ),
        (
            "deploy.yml",
            "    permissions:\n      contents: read\n",
            "    permissions: write-all\n",
            "excessive-permissions",
        ),
        (
            "pull-request.yml",
            "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2",
            "actions/checkout@v4",
            "unpinned-uses",
        ),
        (
            "pull-request.yml",
            "          persist-credentials: false\n",
            "          fetch-depth: 1\n",
            "artipacked",
        ),
        ("pull-request.yml", "  pull_request:\n", "  pull_request_target:\n", "dangerous-triggers"),
    ],
)
def test_zizmor_catches_a_regressed_workflow(copy_of_github, workflow, old, new, audit):
    rewrite(copy_of_github / "workflows" / workflow, old, new)
    result = zizmor(copy_of_github)
    assert result.returncode != 0
    assert audit in result.stdout, result.stdout[-2000:]


def test_the_schema_check_catches_a_misspelt_key(copy_of_github):
    path = copy_of_github / "workflows" / "deploy.yml"
    rewrite(path, "    runs-on: ubuntu-24.04\n", "    run-on: ubuntu-24.04\n")
    result = schema(path)
    assert result.returncode != 0 and "deploy.yml" in result.stdout


def test_the_structure_policies_catch_an_expression_in_a_shell_step(copy_of_github, monkeypatch):
    rewrite(
        copy_of_github / "workflows" / "publish-links.yml",
        "run: .venv/bin/python -m functions.links validate",
        "run: .venv/bin/python -m functions.links validate ${{ github.head_ref }}",
    )
    monkeypatch.setattr(sys.modules[__name__], "GITHUB", copy_of_github)
    with pytest.raises(AssertionError, match="pass values to run steps through env"):
        test_no_long_lived_keys_and_no_expressions_inside_shell(
            copy_of_github / "workflows" / "publish-links.yml"
        )
