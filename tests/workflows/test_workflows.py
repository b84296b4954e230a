"""The CI/CD workflows: linted (zizmor, JSON schema) and held to the delivery policies.

GitHub Actions cannot run here. These tests lint the real workflows and composite
actions, check the properties the delivery design relies on, and break copies of
them to show the checks fail when a workflow regresses.
"""

from __future__ import annotations

import fnmatch
import json
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
PUBLISH_ACTION = "$/.github/actions/publish-links"
PULUMI_ACTION = "pulumi/actions@"
STACKS = ("dev", "staging", "prod")


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
    # No severity or confidence filter: even an informational finding fails.
    return subprocess.run(
        [BIN / "zizmor", "--offline", "--no-progress", str(directory)],
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


def test_zizmor_finds_nothing_at_any_severity():
    result = zizmor(GITHUB)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_workflow_and_action_matches_github_s_schemas():
    for name, paths in (
        ("vendor.github-workflows", WORKFLOWS),
        ("vendor.github-actions", ACTIONS),
        ("vendor.dependabot", [GITHUB / "dependabot.yml"]),
    ):
        result = schema(name, *paths)
        assert result.returncode == 0, result.stdout + result.stderr


def test_no_policy_file_relaxes_the_pinning_rules():
    # Every action is pinned to a full commit SHA; nothing needs an exception.
    assert not (GITHUB / "zizmor.yml").exists()
    for path in [*WORKFLOWS, *ACTIONS]:
        for step in steps_of(path):
            action = step.get("uses", "")
            if action and not action.startswith("$/"):
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


def test_local_actions_and_reusable_workflows_use_the_self_repository_form():
    # `$/` resolves at the workflow's own commit, with no checkout needed first.
    for path in [*WORKFLOWS, *ACTIONS]:
        local = [ref for ref in re.findall(r"uses:\s*(\S+)", path.read_text()) if "@" not in ref]
        for ref in local:
            assert ref.startswith("$/"), f"{path.name}: {ref} should be $/{ref.lstrip('./')}"


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
        assert jobs[stack]["uses"] == "$/.github/workflows/reusable-deploy-stack.yml"
        assert jobs[stack]["with"] == {"stack": stack}


def test_a_stack_deploy_checks_updates_all_regions_once_then_publishes_in_its_environment():
    path = GITHUB / "workflows" / "reusable-deploy-stack.yml"
    (job,) = load(path)["jobs"].values()
    assert job["environment"] == "${{ inputs.stack }}"
    steps = job["steps"]
    tip = index_of(steps, runs("scripts.tip_of_main"), "checks the run is main's tip")
    role = index_of(steps, uses("aws-actions/configure-aws-credentials@"), "assumes the role")
    check = index_of(steps, runs("scripts.datastore_failover check"), "checks primaryRegion")
    up = index_of(steps, runs("scripts.pulumi_run up"), "runs pulumi up")
    publish = index_of(steps, uses(PUBLISH_ACTION), "publishes the links")
    package = index_of(steps, runs("make package"), "builds the archive")
    # The guard asks AWS for the primary, so it needs the deploy role's credentials.
    assert tip < role < check < up < publish and package < up
    assert steps[role]["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    assert steps[publish]["with"]["role-to-assume"] == "${{ vars.AWS_PUBLISH_ROLE_ARN }}"
    assert not any("pulumi_run up" in s.get("run", "") for s in steps[up + 1 :])


def test_publishing_uploads_then_waits_for_every_region():
    path = GITHUB / "actions" / "publish-links" / "action.yml"
    steps = load(path)["runs"]["steps"]
    outputs = index_of(steps, runs("pulumi stack output --json"), "reads the outputs")
    role = index_of(steps, uses("aws-actions/configure-aws-credentials@"), "assumes the role")
    publish = index_of(steps, runs("scripts.publish_links --stack-outputs"), "publishes")
    assert outputs < role < publish


def test_with_a_region_down_the_failover_publishes_without_waiting_for_it():
    steps = workflow("datastore-failover.yml")["jobs"]["failover"]["steps"]
    publish = index_of(steps, uses(PUBLISH_ACTION), "publishes")
    skip = "${{ inputs.region-down != 'none' && inputs.region-down || '' }}"
    assert steps[publish]["with"].get("skip-region") == skip
    action = load(GITHUB / "actions" / "publish-links" / "action.yml")
    assert action["inputs"]["skip-region"]["default"] == ""
    step = action["runs"]["steps"][
        index_of(action["runs"]["steps"], runs("publish_links"), "publishes")
    ]
    assert step["env"]["SKIP_REGION"] == "${{ inputs.skip-region }}"
    assert 'if [ -n "$SKIP_REGION" ]; then skip=(--skip-region "$SKIP_REGION"); fi' in step["run"]
    assert '"${skip[@]}"' in step["run"]


def test_pull_requests_preview_every_stack_but_forks_and_dependabot_get_no_credentials():
    pr = workflow("pull-request.yml")
    assert set(pr["on"]) == {"pull_request"}  # never pull_request_target
    test = pr["jobs"]["test"]
    assert "id-token" not in test["permissions"] and "secrets." not in str(test)
    preview = pr["jobs"]["preview"]
    # Dependabot's runs have no secrets and no ID token: the preview would only fail.
    condition = " ".join(preview["if"].split())
    assert condition == (
        "github.event.pull_request.head.repo.full_name == github.repository "
        "&& github.actor != 'dependabot[bot]'"
    )
    assert preview["environment"] == "${{ matrix.stack }}-preview"
    assert preview["strategy"]["matrix"]["stack"] == ["dev", "staging", "prod"]


def test_each_stack_s_preview_is_one_comment_written_by_the_project_s_own_script():
    steps = workflow("pull-request.yml")["jobs"]["preview"]["steps"]
    assert not any("comment-on-pr" in step.get("with", {}) for step in steps)
    preview = index_of(steps, runs("scripts.pulumi_run preview"), "runs pulumi preview")
    assert '--comment-file pulumi-preview.md --label "$STACK"' in steps[preview]["run"]
    posts = index_of(steps, runs("--body-file pulumi-preview.md"), "comments the preview")
    assert posts > preview and "scripts.pr_comment" in steps[posts]["run"]
    # A failed preview (a policy violation, say) is commented too.
    assert steps[posts].get("if", "").startswith("${{ !cancelled()")
    diff = index_of(steps, runs("functions.links diff --against-s3"), "diffs the links")
    assert "--format markdown" in steps[diff]["run"]
    assert index_of(steps, runs("--body-file link-diff.md"), "comments the diff") > diff


def test_failover_is_manual_a_dry_run_by_default_and_changes_nothing_when_dry():
    failover = workflow("datastore-failover.yml")
    assert set(failover["on"]) == {"workflow_dispatch"}
    assert failover["on"]["workflow_dispatch"]["inputs"]["dry-run"]["default"] is True
    steps = failover["jobs"]["failover"]["steps"]
    promote = index_of(steps, runs("scripts.datastore_failover promote"), "promotes")
    assert '"${execute[@]}"' in steps[promote]["run"] and "DRY_RUN" in steps[promote]["env"]
    proposal = index_of(steps, runs("scripts.propose_change"), "proposes the change")
    up = index_of(steps, runs("scripts.pulumi_run up"), "re-points the stack")
    publish = index_of(steps, uses(PUBLISH_ACTION), "republishes")
    assert promote < proposal < up < publish
    for step in steps[promote + 1 :]:
        condition = step.get("if", "")
        assert condition == "${{ !inputs.dry-run }}" or condition.startswith(
            "${{ !inputs.dry-run && "
        ), f"{step} runs in a dry run"


def test_the_failover_leaves_the_store_to_the_runbook_which_reads_the_deployed_one():
    """One workflow for both stores: the runbook reads the stack's `link_store` output and
    promotes the Datastore member or checks the table's replica; the deploy's guard reads
    the same outputs. Nothing store-specific is written into the workflows."""
    steps = workflow("datastore-failover.yml")["jobs"]["failover"]["steps"]
    promote = steps[index_of(steps, runs("scripts.datastore_failover promote"), "promotes")]
    (deploy,) = workflow("reusable-deploy-stack.yml")["jobs"].values()
    check = deploy["steps"][
        index_of(deploy["steps"], runs("scripts.datastore_failover check"), "checks")
    ]
    for step in (promote, check):
        assert re.search(
            r'pulumi stack output --json --stack "\$PULUMI_STACK" > "\$RUNNER_TEMP/deployed.json"'
            r'(.|\n)*--stack-outputs "\$RUNNER_TEMP/deployed.json"',
            step["run"],
        ), step["run"]
    for path in [*WORKFLOWS, *ACTIONS]:
        for step in steps_of(path):
            assert not re.search(r"\baws (elasticache|dynamodb)\b", step.get("run", "")), step
    proposal = steps[index_of(steps, runs("scripts.propose_change"), "proposes the change")]
    message = re.search(r'--message "([^"]*)"', proposal["run"])[1]
    title = re.search(r'--title "([^"]*)"', proposal["run"])[1]
    assert "Datastore" not in message + title, "a DynamoDB failover promotes no Datastore"


def test_a_rerun_of_the_failover_reuses_its_branch_and_pull_request():
    steps = workflow("datastore-failover.yml")["jobs"]["failover"]["steps"]
    proposal = steps[index_of(steps, runs("scripts.propose_change"), "proposes the change")]
    assert '--branch "failover/${STACK}-${REGION}"' in proposal["run"]
    text = (GITHUB / "workflows" / "datastore-failover.yml").read_text()
    for per_run in ("run_id", "RUN_ID", "run_number", "RUN_NUMBER", "run_attempt", "git push"):
        assert per_run not in text, f"the failover's branch must not depend on {per_run}"


def test_with_a_region_down_the_failover_updates_only_around_it():
    failover = workflow("datastore-failover.yml")
    inputs = failover["on"]["workflow_dispatch"]["inputs"]
    stack_regions = inputs["region"]["options"]
    assert inputs["region-down"]["options"] == ["none", *stack_regions]
    assert inputs["region-down"]["default"] == "none"
    steps = failover["jobs"]["failover"]["steps"]
    plan = index_of(steps, runs("scripts.datastore_failover targets"), "plans the targets")
    up = index_of(steps, runs("scripts.pulumi_run up"), "re-points the stack")
    assert plan < up
    assert steps[plan]["if"] == "${{ !inputs.dry-run && inputs.region-down != 'none' }}"
    assert '--json-file "$RUNNER_TEMP/preview.json"' in steps[plan]["run"]
    # The runbook's inputs: the preview, and the exported state (every provider's region).
    assert (
        'pulumi stack export --stack "$PULUMI_STACK" > "$RUNNER_TEMP/state.json"'
        in (steps[plan]["run"])
    )
    assert re.search(
        r'--preview "\$RUNNER_TEMP/preview.json" --state "\$RUNNER_TEMP/state.json" \\\s+'
        r'--unreachable "\$REGION_DOWN" > "\$RUNNER_TEMP/targets.txt"',
        steps[plan]["run"],
    )
    assert 'targeted=(--target-file "$RUNNER_TEMP/targets.txt")' in steps[up]["run"]
    for step in (steps[plan], steps[up]):
        assert step["env"]["REGION_DOWN"] == "${{ inputs.region-down }}"


def test_deploys_and_failovers_of_one_stack_share_one_concurrency_group():
    (deploy,) = workflow("reusable-deploy-stack.yml")["jobs"].values()
    failover = workflow("datastore-failover.yml")
    stack_group = {"group": "stack-${{ inputs.stack }}", "cancel-in-progress": False}
    # Both name the stack by the same input (the called workflow's, the dispatch's).
    assert deploy["concurrency"] == stack_group
    assert failover["concurrency"] == stack_group
    assert failover["on"]["workflow_dispatch"]["inputs"]["stack"]["options"] == [
        "dev",
        "staging",
        "prod",
    ]


def stack_changing_jobs():
    for path in WORKFLOWS:
        for name, job in load(path)["jobs"].items():
            steps = job.get("steps", [])
            changes = [
                i
                for i, step in enumerate(steps)
                if "pulumi_run up" in step.get("run", "")
                or "datastore_failover promote" in step.get("run", "")
            ]
            if changes:
                yield path, name, steps, changes[0]


def test_only_the_tip_of_main_changes_a_stack():
    found = list(stack_changing_jobs())
    assert {(path.name, name) for path, name, *_ in found} == {
        ("reusable-deploy-stack.yml", "deploy"),
        ("datastore-failover.yml", "failover"),
    }
    for path, name, steps, first_change in found:
        tip = index_of(steps, runs("scripts.tip_of_main --stack"), f"guards {path.name}:{name}")
        assert tip < first_change, f"{path.name}:{name} changes a stack before the guard"
        assert steps[tip]["env"] == {"GITHUB_TOKEN": "${{ github.token }}"}


def test_every_pulumi_update_and_preview_runs_the_policy_pack():
    commands = [
        step["run"]
        for path in [*WORKFLOWS, *ACTIONS]
        for step in steps_of(path)
        if re.search(
            r"pulumi_run (up|preview)|^\s*pulumi (up|preview)\b", step.get("run", ""), re.M
        )
    ]
    # The deploy, the failover (its update, and the plan around a region that is down),
    # the pull-request preview.
    assert len(commands) == 4
    for command in commands:
        assert "scripts.pulumi_run" in command and "--policy-pack policy" in command, command
    for path in [*WORKFLOWS, *ACTIONS]:
        for step in steps_of(path):
            if uses(PULUMI_ACTION)(step):
                assert "command" not in step.get("with", {}), "commands run via pulumi_run"


def test_the_pulumi_cli_is_the_release_of_the_pinned_python_sdk():
    pinned = re.search(r"^pulumi==(\S+)", (REPO / "requirements" / "dev.txt").read_text(), re.M)
    installs = [
        step
        for path in [*WORKFLOWS, *ACTIONS]
        for step in steps_of(path)
        if uses(PULUMI_ACTION)(step)
    ]
    assert installs, "the Pulumi CLI is installed somewhere"
    for step in installs:
        assert str(step["with"]["pulumi-version"]) == pinned.group(1)


def secrets_used(job_or_steps) -> set[str]:
    return set(re.findall(r"\$\{\{\s*secrets\.([A-Z_]+)\s*\}\}", str(job_or_steps)))


def test_environment_secrets_are_not_required_but_checked_inside_the_job():
    for path in WORKFLOWS:
        document = load(path)
        call = (document["on"] or {}).get("workflow_call") or {}
        for name, declared in (call.get("secrets") or {}).items():
            assert not declared.get("required"), f"{path.name}: {name} cannot be required"
        for job_name, job in document["jobs"].items():
            if "uses" in job:
                assert "secrets" not in job, f"{path.name}:{job_name} passes environment secrets"
                continue
            steps = job.get("steps", [])
            for secret in secrets_used(steps):
                check = index_of(
                    steps,
                    lambda step, s=secret: f'[ -z "${s}" ]' in step.get("run", ""),
                    f"checks {secret} in {path.name}:{job_name}",
                )
                assert steps[check]["env"] == {secret: f"${{{{ secrets.{secret} }}}}"}
                assert (
                    "exit 1" in steps[check]["run"]
                    and f"::error::{secret} is empty" in (steps[check]["run"])
                )
                first_use = min(
                    i for i, step in enumerate(steps) if i != check and secrets_used(step)
                )
                assert check < first_use, f"{path.name}:{job_name} uses {secret} unchecked"


def pulumi_token_requests():
    for path in WORKFLOWS:
        for name, job in load(path)["jobs"].items():
            for step in job.get("steps", []):
                if uses("pulumi/auth-actions@")(step):
                    yield path, name, job, step["with"]


def test_pulumi_cloud_tokens_are_team_tokens_for_one_stack_never_the_organization_s():
    requests = list(pulumi_token_requests())
    assert len(requests) == 4  # the deploy, the failover, the preview, the links rollback
    for path, name, job, given in requests:
        assert given["requested-token-type"] == "urn:pulumi:token-type:access_token:team"
        # The team is named after the job's GitHub environment, whose OIDC subject the
        # issuer policy (docs/delivery.md) matches exactly.
        environment = job["environment"]
        stack = environment.removesuffix("-preview")
        kind = "preview" if environment.endswith("-preview") else "deploy"
        assert given["scope"] == f"team:golinks-{stack}-{kind}", f"{path.name}:{name}"
    for path in [*WORKFLOWS, *ACTIONS]:
        assert "access_token:organization" not in path.read_text()


def issuer_policy() -> dict:
    text = (REPO / "docs" / "delivery.md").read_text()
    block = re.search(r"```json\n(\{\n  \"policies\".*?)\n```", text, re.S)
    assert block, "docs/delivery.md shows the Pulumi Cloud issuer policy as a JSON block"
    return json.loads(block.group(1))


def test_the_documented_issuer_policy_admits_each_environment_to_its_own_team_only():
    rules = issuer_policy()["policies"]
    environments = [f"{stack}{kind}" for stack in STACKS for kind in ("", "-preview")]
    by_subject = {rule["rules"]["sub"]: rule for rule in rules}
    assert len(rules) == len(by_subject) == len(environments)
    for environment in environments:
        rule = by_subject[f"repo:<owner>/<repo>:environment:{environment}"]
        stack = environment.removesuffix("-preview")
        kind = "preview" if environment.endswith("-preview") else "deploy"
        assert rule["decision"] == "allow" and rule["tokenType"] == "team"
        assert rule["teamName"] == f"golinks-{stack}-{kind}"
        assert rule["rules"]["aud"] == "urn:pulumi:org:<org>"
        assert "*" not in json.dumps(rule)
    # The workflows ask for exactly these teams.
    asked = set()
    for _path, _name, _job, given in pulumi_token_requests():
        template = given["scope"].removeprefix("team:")
        for stack in STACKS:
            asked.add(re.sub(r"\$\{\{ (matrix|inputs)\.stack \}\}", stack, template))
    assert asked == {rule["teamName"] for rule in rules}


def test_dependabot_updates_the_workflows_and_every_composite_action():
    (actions,) = [
        update
        for update in yaml.safe_load((GITHUB / "dependabot.yml").read_text())["updates"]
        if update["package-ecosystem"] == "github-actions"
    ]
    directories = actions.get("directories") or [actions["directory"]]
    assert "/" in directories  # /.github/workflows
    for action in ACTIONS:
        where = "/" + action.parent.relative_to(GITHUB.parent).as_posix()
        assert any(fnmatch.fnmatch(where, pattern) for pattern in directories), where


def pin_table() -> dict[str, tuple[str, str, str]]:
    """action -> (tag, commit, runtime), from the table in docs/delivery.md."""
    rows = re.findall(
        r"^\| `([\w.-]+/[\w.-]+)` \| `(v[\d.]+)` \| `([0-9a-f]{40})` \| (\w+) \|",
        (REPO / "docs" / "delivery.md").read_text(),
        re.M,
    )
    return {action: (tag, commit, runtime) for action, tag, commit, runtime in rows}


def test_every_pin_is_a_row_of_the_pin_table_with_its_tag_and_runs_on_node24():
    table = pin_table()
    assert table, "docs/delivery.md has the pin table"
    seen = set()
    for path in [*WORKFLOWS, *ACTIONS]:
        for line in path.read_text().splitlines():
            found = re.search(r"uses:\s*([^$\s][^@\s]*)@(\S+)(.*)$", line)
            if not found:
                continue
            action, ref, comment = found.groups()
            assert action in table, f"{path.name}: {action} is not in the pin table"
            tag, commit, runtime = table[action]
            assert ref == commit, f"{path.name}: {action}@{ref} is not the table's {commit}"
            assert comment.strip() == f"# {tag}", f"{path.name}: {action} says {comment!r}"
            assert runtime == "node24", f"{action} {tag} runs on {runtime}"
            seen.add(action)
    assert seen == set(table), f"unused rows in the pin table: {set(table) - seen}"


def test_workflow_lint_runs_zizmor_without_a_severity_filter():
    makefile = (REPO / "Makefile").read_text()
    (line,) = [line for line in makefile.splitlines() if "bin/zizmor" in line]
    assert "--offline" in line and "--min-" not in line and "--persona" not in line


def test_rollback_is_manual_per_stack_behind_the_stack_s_environment():
    rollback = workflow("rollback.yml")
    assert set(rollback["on"]) == {"workflow_dispatch"}
    inputs = rollback["on"]["workflow_dispatch"]["inputs"]
    assert inputs["stack"]["options"] == ["dev", "staging", "prod"]
    assert inputs["version"]["required"] is True
    # One group per stack with deploys and failovers: a rollback never races a publish.
    assert rollback["concurrency"] == {
        "group": "stack-${{ inputs.stack }}",
        "cancel-in-progress": False,
    }
    (job,) = rollback["jobs"].values()
    assert job["environment"] == "${{ inputs.stack }}"  # the deploy's gates and approvals
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    steps = job["steps"]
    outputs = index_of(steps, runs("pulumi stack output --json"), "reads the outputs")
    role = index_of(steps, uses("aws-actions/configure-aws-credentials@"), "assumes the role")
    assert steps[role]["with"]["role-to-assume"] == "${{ vars.AWS_PUBLISH_ROLE_ARN }}"
    back = index_of(steps, runs("functions.links rollback"), "rolls back")
    tip = index_of(steps, runs("scripts.tip_of_main --stack"), "runs only from main's tip")
    assert tip < outputs < role < back
    assert '--to "$VERSION"' in steps[back]["run"] and "--stack-outputs" in steps[back]["run"]


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
            "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1",
            "actions/checkout@v7",
            "unpinned-uses",
        ),
        (
            "actions/setup/action.yml",
            "pulumi/actions@8e5e406f4007fca908480587cb9893c07090f58d # v7.0.0",
            "pulumi/actions@v7",
            "unpinned-uses",
        ),
        (
            "workflows/deploy.yml",
            "    uses: $/.github/workflows/reusable-deploy-stack.yml",
            "    uses: ./.github/workflows/reusable-deploy-stack.yml",
            "self-repository",
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


@pytest.fixture
def broken_copy(copy_of_github, monkeypatch):
    """Rewrite a copy of .github/ and point the policies at it."""
    module = sys.modules[__name__]

    def rewrite_copy(file: str, old: str, new: str) -> None:
        rewrite(copy_of_github / file, old, new)
        monkeypatch.setattr(module, "GITHUB", copy_of_github)
        monkeypatch.setattr(
            module, "WORKFLOWS", sorted((copy_of_github / "workflows").glob("*.yml"))
        )
        monkeypatch.setattr(
            module, "ACTIONS", sorted((copy_of_github / "actions").glob("*/action.yml"))
        )

    return rewrite_copy


TIP_OF_MAIN_STEP = """      - name: Deploy only the tip of main
        env:
          GITHUB_TOKEN: ${{ github.token }}
        run: .venv/bin/python -m scripts.tip_of_main --stack "$STACK"
"""


@pytest.mark.parametrize(
    ("policy", "file", "old", "new"),
    [
        (
            test_pull_requests_preview_every_stack_but_forks_and_dependabot_get_no_credentials,
            "workflows/pull-request.yml",
            "\n      && github.actor != 'dependabot[bot]'",
            "",
        ),
        (
            test_dependabot_updates_the_workflows_and_every_composite_action,
            "dependabot.yml",
            "directories: [/, /.github/actions/*]",
            "directory: /",
        ),
        (
            test_environment_secrets_are_not_required_but_checked_inside_the_job,
            "workflows/reusable-deploy-stack.yml",
            "        required: false",
            "        required: true",
        ),
        (
            test_environment_secrets_are_not_required_but_checked_inside_the_job,
            "workflows/pull-request.yml",
            '          if [ -z "$CLOUDFLARE_API_TOKEN" ]; then',
            '          if [ -z "${CLOUDFLARE_API_TOKEN:-x}" ]; then',
        ),
        (
            test_pulumi_cloud_tokens_are_team_tokens_for_one_stack_never_the_organization_s,
            "workflows/pull-request.yml",
            "access_token:team",
            "access_token:organization",
        ),
        (
            test_pulumi_cloud_tokens_are_team_tokens_for_one_stack_never_the_organization_s,
            "workflows/reusable-deploy-stack.yml",
            "team:golinks-${{ inputs.stack }}-deploy",
            "team:golinks-deploy",
        ),
        (
            test_a_rerun_of_the_failover_reuses_its_branch_and_pull_request,
            "workflows/datastore-failover.yml",
            '--branch "failover/${STACK}-${REGION}"',
            '--branch "failover/${STACK}-${REGION}-${GITHUB_RUN_ID}"',
        ),
        (
            test_the_failover_leaves_the_store_to_the_runbook_which_reads_the_deployed_one,
            "workflows/datastore-failover.yml",
            "the primary region of ${STACK} after a failover",
            "the primary region of ${STACK} after a Datastore failover",
        ),
        (
            test_the_failover_leaves_the_store_to_the_runbook_which_reads_the_deployed_one,
            "workflows/reusable-deploy-stack.yml",
            '--stack-outputs "$RUNNER_TEMP/deployed.json"',
            "--stack-outputs outputs.json",
        ),
        (
            test_deploys_and_failovers_of_one_stack_share_one_concurrency_group,
            "workflows/reusable-deploy-stack.yml",
            "group: stack-${{ inputs.stack }}",
            "group: deploy-${{ inputs.stack }}",
        ),
        (
            test_only_the_tip_of_main_changes_a_stack,
            "workflows/reusable-deploy-stack.yml",
            TIP_OF_MAIN_STEP,
            "",
        ),
        (
            test_with_a_region_down_the_failover_updates_only_around_it,
            "workflows/datastore-failover.yml",
            'then targeted=(--target-file "$RUNNER_TEMP/targets.txt"); fi',
            "then targeted=(); fi",
        ),
        (
            test_with_a_region_down_the_failover_publishes_without_waiting_for_it,
            "workflows/datastore-failover.yml",
            "skip-region: ${{ inputs.region-down != 'none' && inputs.region-down || '' }}",
            "skip-region: ${{ inputs.region-down }}",
        ),
        (
            test_every_pulumi_update_and_preview_runs_the_policy_pack,
            "workflows/datastore-failover.yml",
            " --policy-pack policy",
            "",
        ),
        (
            test_the_pulumi_cli_is_the_release_of_the_pinned_python_sdk,
            "actions/setup/action.yml",
            "pulumi-version: 3.",
            "pulumi-version: 2.",
        ),
        (
            test_every_pin_is_a_row_of_the_pin_table_with_its_tag_and_runs_on_node24,
            "workflows/pull-request.yml",
            "3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1",
            "3d3c42e5aac5ba805825da76410c181273ba90b1 # v6.0.0",
        ),
        (
            test_each_stack_s_preview_is_one_comment_written_by_the_project_s_own_script,
            "workflows/pull-request.yml",
            "        if: ${{ !cancelled() && hashFiles('pulumi-preview.md') != '' }}\n",
            "",
        ),
        (
            test_local_actions_and_reusable_workflows_use_the_self_repository_form,
            "workflows/reusable-deploy-stack.yml",
            "uses: $/.github/actions/publish-links",
            "uses: ./.github/actions/publish-links",
        ),
    ],
    ids=lambda value: getattr(value, "__name__", "")[5:45] if callable(value) else "",
)
def test_the_policies_catch_a_reverted_fix(broken_copy, policy, file, old, new):
    broken_copy(file, old, new)
    with pytest.raises(AssertionError):
        policy()


def test_python_dependencies_and_their_installer_are_installed_by_hash():
    for name in (
        "requirements/installer",
        "requirements/dev",
        "requirements/bench",
        "functions/requirements",
    ):
        text = (REPO / f"{name}.txt").read_text()
        assert "--generate-hashes" in text.splitlines()[1], f"{name}.txt: compile with hashes"
        pins = re.findall(r"^(\S+)==\S+((?: \\\n\s+--hash=sha256:[0-9a-f]{64})*)", text, re.M)
        assert pins, name
        for package, hashes in pins:
            assert hashes, f"{name}.txt: {package} has no hash"
    assert re.search(r"^uv==", (REPO / "requirements" / "installer.txt").read_text(), re.M)
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert "--require-hashes \\\n    -r requirements/installer.txt" in setup
    assert (
        'uv" pip install --quiet --require-hashes' in setup and "-r requirements/dev.txt" in setup
    )
    bench = [line for line in (REPO / "Makefile").read_text().splitlines() if "bench.txt" in line]
    assert bench and all("--require-hashes" in line for line in bench)


def test_every_policy_pack_the_workflows_run_is_in_the_repository():
    packs = {
        pack
        for path in [*WORKFLOWS, *ACTIONS]
        for step in steps_of(path)
        for pack in re.findall(r"--policy-pack (\S+)", step.get("run", ""))
    }
    assert packs == {"policy"}
    for pack in packs:
        manifest = yaml.safe_load((REPO / pack / "PulumiPolicy.yaml").read_text())
        # It runs in the virtualenv the setup action creates (`make setup`: .venv).
        assert (REPO / pack / manifest["runtime"]["options"]["virtualenv"]).resolve() == (
            REPO / ".venv"
        ).resolve()


def test_the_docs_require_a_maintainer_s_approval_for_staging_and_prod_previews():
    # Environment protection lives in GitHub's settings; the guide is what sets it up.
    text = (REPO / "docs" / "delivery.md").read_text()
    rows = {
        row.split("|")[1].strip(): row
        for row in text.splitlines()
        if row.startswith("| `") and "-preview`" in row.split("|")[1]
    }
    assert "**required reviewers**" in rows["`staging-preview`, `prod-preview`"]
    assert "no reviewers" in rows["`dev-preview`"]
