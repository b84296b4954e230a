"""The scripts CI calls: pull-request comments, the Pulumi runs, the deploy guards, the
Datastore failover runbook and its pull request.

GitHub, AWS and the Pulumi CLI cannot run here, so each script talks to a local stand-in
that implements the few calls it makes (GitHub's REST endpoints for comments, refs,
contents and pull requests; `aws` and `pulumi` executables answering like the real CLIs),
and the tests check what the script asked of them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
BOT = {"login": "github-actions[bot]", "type": "Bot"}
MAIN_SHA = "a" * 40


class FakeGitHub(BaseHTTPRequestHandler):
    """The REST calls the scripts make: issue comments, refs, contents, pull requests."""

    comments: list[dict] = []  # noqa: RUF012 - one fake per test, reset by the fixture
    requests: list[tuple[str, str]] = []  # noqa: RUF012
    refs: dict[str, str] = {}  # noqa: RUF012 - branch -> commit sha
    files: dict[tuple[str, str], bytes] = {}  # noqa: RUF012 - (branch, path) -> content
    pulls: list[dict] = []  # noqa: RUF012
    PREFIX = "/repos/example/golinks"

    def _reply(self, status: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") != "Bearer test-token":
            self._reply(401, {"message": "Bad credentials"})
            return False
        return True

    def _start(self, method: str):
        """(path under the repository, query, JSON body) or None when already answered."""
        self.requests.append((method, self.path))
        if not self._authorised():
            return None
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        return unquote(url.path.removeprefix(self.PREFIX)), query, body

    def do_GET(self):
        started = self._start("GET")
        if started is None:
            return
        path, query, _ = started
        if path.startswith("/issues/"):
            page, per_page = int(query["page"]), int(query["per_page"])
            self._reply(200, self.comments[(page - 1) * per_page : page * per_page])
        elif path.startswith("/git/ref/heads/"):
            branch = path.removeprefix("/git/ref/heads/")
            if branch in self.refs:
                self._reply(200, {"object": {"sha": self.refs[branch]}})
            else:
                self._reply(404, {"message": "Not Found"})
        elif path.startswith("/contents/"):
            key = (query["ref"], path.removeprefix("/contents/"))
            if key in self.files:
                content = self.files[key]
                blob = hashlib.sha1(content).hexdigest()  # noqa: S324 - git's blob ids
                self._reply(200, {"content": base64.b64encode(content).decode(), "sha": blob})
            else:
                self._reply(404, {"message": "Not Found"})
        elif path == "/pulls":
            self._reply(
                200,
                [
                    pr
                    for pr in self.pulls
                    if pr["state"] == query["state"] and f"example:{pr['head']}" == query["head"]
                ],
            )
        else:
            self._reply(404, {"message": "Not Found"})

    def do_POST(self):
        started = self._start("POST")
        if started is None:
            return
        path, _, body = started
        if path.startswith("/issues/"):
            comment = {"id": 1000 + len(self.comments), "body": body["body"], "user": BOT}
            self.comments.append(comment)
            self._reply(201, comment)
        elif path == "/git/refs":
            branch = body["ref"].removeprefix("refs/heads/")
            if branch in self.refs:
                self._reply(422, {"message": "Reference already exists"})
                return
            self.refs[branch] = body["sha"]
            for (ref, file), content in list(self.files.items()):
                if self.refs.get(ref) == body["sha"]:
                    self.files[(branch, file)] = content
            self._reply(201, {"ref": body["ref"]})
        elif path == "/pulls":
            if any(pr["head"] == body["head"] and pr["state"] == "open" for pr in self.pulls):
                self._reply(422, {"message": "A pull request already exists"})
                return
            number = 40 + len(self.pulls)
            url = f"https://github.com/example/golinks/pull/{number}"
            self.pulls.append({**body, "number": number, "state": "open", "html_url": url})
            self._reply(201, self.pulls[-1])

    def do_PUT(self):
        started = self._start("PUT")
        if started is None:
            return
        path, _, body = started
        key = (body["branch"], path.removeprefix("/contents/"))
        if key in self.files and body.get("sha") != hashlib.sha1(self.files[key]).hexdigest():  # noqa: S324
            self._reply(409, {"message": "sha does not match"})
            return
        self.files[key] = base64.b64decode(body["content"])
        commit = hashlib.sha1(body["message"].encode() + self.files[key]).hexdigest()  # noqa: S324
        self.refs[body["branch"]] = commit
        self._reply(200, {"commit": {"sha": commit}})

    def do_PATCH(self):
        started = self._start("PATCH")
        if started is None:
            return
        path, _, body = started
        comment_id = int(path.rsplit("/", 1)[1])
        comment = next(c for c in self.comments if c["id"] == comment_id)
        comment["body"] = body["body"]
        self._reply(200, comment)

    def log_message(self, *args):
        pass


@pytest.fixture
def github():
    FakeGitHub.comments, FakeGitHub.requests, FakeGitHub.pulls = [], [], []
    FakeGitHub.refs, FakeGitHub.files = {"main": MAIN_SHA}, {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGitHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def github_env(github, token: str = "test-token", **extra: str) -> dict:
    return {
        **os.environ,
        "GITHUB_TOKEN": token,
        "GITHUB_REPOSITORY": "example/golinks",
        "GITHUB_API_URL": f"http://127.0.0.1:{github.server_port}",
        "PYTHONPATH": str(REPO),
        **extra,
    }


def script(module: str, *args: str, env: dict, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"scripts.{module}", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def comment(github, body: str, tmp_path: Path, token: str = "test-token", pr: int = 7):
    body_file = tmp_path / "body.md"
    body_file.write_text(body)
    return script(
        "pr_comment", "--pr", str(pr), "--body-file", str(body_file), env=github_env(github, token)
    )


def test_the_comment_is_created_once_then_updated_in_place(github, tmp_path):
    first = comment(github, "<!-- golinks:link-diff:dev -->\nfirst", tmp_path)
    assert first.returncode == 0 and "created comment 1000" in first.stdout
    second = comment(github, "<!-- golinks:link-diff:dev -->\nsecond", tmp_path)
    assert "updated comment 1000" in second.stdout
    other = comment(github, "<!-- golinks:link-diff:prod -->\nprod", tmp_path)
    assert "created comment 1001" in other.stdout
    assert [c["body"] for c in FakeGitHub.comments] == [
        "<!-- golinks:link-diff:dev -->\nsecond",
        "<!-- golinks:link-diff:prod -->\nprod",
    ]
    assert ("POST", "/repos/example/golinks/issues/7/comments") in FakeGitHub.requests


def test_its_own_comment_is_found_beyond_the_first_page(github, tmp_path):
    FakeGitHub.comments = [{"id": i, "body": f"chatter {i}", "user": BOT} for i in range(150)]
    FakeGitHub.comments.append(
        {"id": 999, "body": "<!-- golinks:link-diff:dev -->\nold", "user": BOT}
    )
    result = comment(github, "<!-- golinks:link-diff:dev -->\nnew", tmp_path)
    assert "updated comment 999" in result.stdout
    assert len(FakeGitHub.comments) == 151


def test_a_marker_in_someone_elses_comment_is_left_alone(github, tmp_path):
    someone = {"login": "someone", "type": "User"}
    pasted = "<!-- golinks:link-diff:dev -->\nlooks official"
    FakeGitHub.comments = [{"id": 5, "body": pasted, "user": someone}]
    result = comment(github, "<!-- golinks:link-diff:dev -->\nthe diff", tmp_path)
    assert result.returncode == 0 and "created comment 1001" in result.stdout
    assert FakeGitHub.comments[0]["body"] == pasted
    assert not any(method == "PATCH" for method, _ in FakeGitHub.requests)


def test_failures_are_reported_not_raised(github, tmp_path):
    denied = comment(github, "<!-- m -->\nx", tmp_path, token="wrong")
    assert denied.returncode == 1 and "HTTP Error 401" in denied.stderr
    assert "Traceback" not in denied.stderr
    unmarked = comment(github, "no marker", tmp_path)
    assert unmarked.returncode == 2 and "hidden marker line" in unmarked.stderr


# -- the failover runbook -------------------------------------------------------------

FAKE_AWS = r"""#!/usr/bin/env python3
import json, os, sys
log = os.environ["FAKE_AWS_LOG"]
with open(log, "a") as out:
    out.write(json.dumps(sys.argv[1:]) + "\n")
calls = [json.loads(line)[1] for line in open(log)]
region = sys.argv[sys.argv.index("--region") + 1]
if region in os.environ.get("FAKE_AWS_DOWN", "").split(","):
    print(f"Could not connect to the endpoint URL: https://elasticache.{region}.amazonaws.com/",
          file=sys.stderr)
    sys.exit(255)
if "describe-table" in sys.argv:
    # FAKE_AWS_TABLE_STATUS: the table's status at each look, the last one repeated
    statuses = os.environ.get("FAKE_AWS_TABLE_STATUS", "ACTIVE").split(",")
    looks = calls.count("describe-table")
    print(json.dumps({"Table": {"TableStatus": statuses[min(looks, len(statuses)) - 1]}}))
elif "describe-global-replication-groups" in sys.argv:
    failover = "failover-global-replication-group"
    # us-west-2 becomes primary on the second look after the failover call
    looks = calls[calls.index(failover):].count(sys.argv[2]) if failover in calls else 0
    promoted = looks >= 2 or bool(os.environ.get("FAKE_AWS_ALREADY_PROMOTED"))
    members = [
        {"ReplicationGroupRegion": "eu-west-1", "Role": "SECONDARY" if promoted else "PRIMARY",
         "Status": "associated"},
        {"ReplicationGroupRegion": "us-west-2", "Role": "PRIMARY" if promoted else "SECONDARY",
         "Status": "available" if promoted else "modifying"},
    ]
    print(json.dumps({"GlobalReplicationGroups": [{"Members": members}]}))
elif os.environ.get("FAKE_AWS_FAIL"):
    print("An error occurred (InvalidGlobalReplicationGroupState)", file=sys.stderr)
    sys.exit(254)
"""

OUTPUTS = {
    "primary_region": "eu-west-1",
    "global_datastore_id": "ldgnf-golinks-prod",
    "regions": {"eu-west-1": {}, "us-west-2": {}, "ap-southeast-1": {}},
}


def fake_cli(tmp_path: Path, name: str, source: str) -> Path:
    """A directory for PATH holding an executable `name` that runs `source`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / name).write_text(source)
    (bin_dir / name).chmod(0o755)
    return bin_dir


@pytest.fixture
def runbook(tmp_path):
    bin_dir = fake_cli(tmp_path, "aws", FAKE_AWS)
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(OUTPUTS))
    stack_file = tmp_path / "Pulumi.prod.yaml"
    stack_file.write_text((REPO / "Pulumi.prod.yaml").read_text())
    (tmp_path / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    log = tmp_path / "aws.log"

    def run(command: str, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "scripts.datastore_failover",
                command,
                "--stack",
                "prod",
                "--stack-outputs",
                str(outputs),
                "--stack-file",
                str(stack_file),
                *args,
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
            check=False,
            env={
                **os.environ,
                "PATH": f"{bin_dir}:{os.environ['PATH']}",
                "FAKE_AWS_LOG": str(log),
                "PYTHONPATH": str(REPO),
                **env,
            },
        )

    run.log, run.stack_file, run.outputs = log, stack_file, outputs
    return run


def aws_calls(runbook) -> list[str]:
    return [json.loads(line)[1] for line in runbook.log.read_text().splitlines()]


def test_a_dry_run_prints_the_plan_and_changes_nothing(runbook):
    before = runbook.stack_file.read_text()
    result = runbook("promote", "--to-region", "us-west-2")
    assert result.returncode == 0, result.stderr
    assert "dry run, nothing changes" in result.stdout
    assert (
        "aws elasticache failover-global-replication-group --region us-west-2 "
        "--global-replication-group-id ldgnf-golinks-prod --primary-region us-west-2 "
        "--primary-replication-group-id golinks-prod-usw2"
    ) in result.stdout
    assert not runbook.log.exists()
    assert runbook.stack_file.read_text() == before


def test_executing_promotes_waits_and_repoints_the_stack_file(runbook):
    before = runbook.stack_file.read_text()
    result = runbook("promote", "--to-region", "us-west-2", "--execute", "--interval", "0")
    assert result.returncode == 0, result.stderr
    describe = "describe-global-replication-groups"
    assert aws_calls(runbook) == [describe, "failover-global-replication-group"] + [describe] * 2
    after = runbook.stack_file.read_text()
    assert "  golinks:primaryRegion: us-west-2\n" in after
    assert after.replace("primaryRegion: us-west-2", "primaryRegion: eu-west-1") == before
    assert "datastoreHomeRegion: eu-west-1" in after  # the datastore's home never moves


def test_a_refused_failover_leaves_the_stack_file_alone(runbook):
    before = runbook.stack_file.read_text()
    result = runbook("promote", "--to-region", "us-west-2", "--execute", FAKE_AWS_FAIL="1")
    assert result.returncode == 1 and "failover-global-replication-group failed" in result.stderr
    assert runbook.stack_file.read_text() == before


def test_a_region_the_stack_does_not_have_is_refused(runbook):
    result = runbook("promote", "--to-region", "sa-east-1")
    assert result.returncode == 2 and "not one of the stack's regions" in result.stderr


def test_a_rerun_after_the_promotion_does_not_promote_again(runbook):
    result = runbook(
        "promote", "--to-region", "us-west-2", "--execute", FAKE_AWS_ALREADY_PROMOTED="1"
    )
    assert result.returncode == 0, result.stderr
    assert "not promoting again" in result.stdout
    assert "failover-global-replication-group" not in aws_calls(runbook)
    assert "  golinks:primaryRegion: us-west-2\n" in runbook.stack_file.read_text()


def test_a_rerun_after_the_stack_was_repointed_succeeds_without_promoting(runbook):
    # The failover's `pulumi up` ran, then the publish failed: the outputs already name
    # the new primary. A re-run resumes (and succeeds) instead of refusing the target.
    runbook.outputs.write_text(json.dumps({**OUTPUTS, "primary_region": "us-west-2"}))
    result = runbook(
        "promote", "--to-region", "us-west-2", "--execute", FAKE_AWS_ALREADY_PROMOTED="1"
    )
    assert result.returncode == 0, result.stderr
    assert "not promoting again" in result.stdout
    assert aws_calls(runbook) == ["describe-global-replication-groups"] * 2
    assert "  golinks:primaryRegion: us-west-2\n" in runbook.stack_file.read_text()


def test_the_deploy_check_passes_when_aws_reports_the_file_s_primary(runbook):
    result = runbook("check")
    assert result.returncode == 0, result.stderr
    assert "AWS reports primary region eu-west-1" in result.stdout
    assert aws_calls(runbook) == ["describe-global-replication-groups"]


def test_the_deploy_check_believes_aws_not_the_stack_outputs(runbook):
    # Promoted, but the failover's `pulumi up` has not run: the outputs still say eu-west-1.
    result = runbook("check", FAKE_AWS_ALREADY_PROMOTED="1")
    assert result.returncode == 1
    assert (
        "says golinks:primaryRegion: eu-west-1, but AWS reports us-west-2 as the primary"
        in result.stderr
    )
    # Once the failover's pull request (this one-line change) is merged, deploys go ahead.
    text = runbook.stack_file.read_text()
    runbook.stack_file.write_text(
        text.replace("primaryRegion: eu-west-1", "primaryRegion: us-west-2")
    )
    assert runbook("check", FAKE_AWS_ALREADY_PROMOTED="1").returncode == 0


def test_the_deploy_check_asks_the_next_region_when_one_is_down(runbook):
    result = runbook("check", FAKE_AWS_DOWN="eu-west-1")
    assert result.returncode == 0, result.stderr
    regions = [json.loads(line)[3] for line in runbook.log.read_text().splitlines()]
    assert regions == ["eu-west-1", "us-west-2"]


def test_the_deploy_check_deploys_nothing_when_aws_cannot_be_asked(runbook):
    result = runbook("check", FAKE_AWS_DOWN="eu-west-1,us-west-2,ap-southeast-1")
    assert result.returncode == 1
    assert "cannot ask AWS which region is the primary of ldgnf-golinks-prod" in result.stderr
    assert "Could not connect to the endpoint URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_deploy_check_reads_the_project_default_and_allows_a_first_deploy(runbook):
    text = runbook.stack_file.read_text().replace("  golinks:primaryRegion: eu-west-1\n", "")
    runbook.stack_file.write_text(text)
    promoted = runbook("check", FAKE_AWS_ALREADY_PROMOTED="1")
    assert "AWS reports us-west-2 as the primary" in promoted.stderr  # default eu-west-1
    runbook.outputs.write_text("{}")  # not deployed yet
    result = runbook("check")
    assert result.returncode == 0 and "has no Datastore yet" in result.stdout


DYNAMODB_OUTPUTS = {
    "primary_region": "eu-west-1",
    "link_store": "dynamodb",
    "link_table": "golinks-prod-links",
    "regions": {"eu-west-1": {}, "us-west-2": {}, "ap-southeast-1": {}},
}


@pytest.fixture
def table_runbook(runbook):
    runbook.outputs.write_text(json.dumps(DYNAMODB_OUTPUTS))
    return runbook


def aws_regions(runbook) -> list[str]:
    return [json.loads(line)[3] for line in runbook.log.read_text().splitlines()]


def test_a_dynamodb_dry_run_promotes_nothing_and_changes_nothing(table_runbook):
    before = table_runbook.stack_file.read_text()
    result = table_runbook("promote", "--to-region", "us-west-2")
    assert result.returncode == 0, result.stderr
    assert "has no primary to promote: every replica takes writes" in result.stdout
    assert (
        "aws dynamodb describe-table --region us-west-2 --table-name golinks-prod-links"
        in result.stdout
    )
    assert "elasticache" not in result.stdout
    assert not table_runbook.log.exists()
    assert table_runbook.stack_file.read_text() == before


def test_a_dynamodb_failover_waits_for_the_replica_then_moves_the_writer(table_runbook):
    before = table_runbook.stack_file.read_text()
    result = table_runbook(
        "promote",
        "--to-region",
        "us-west-2",
        "--execute",
        "--interval",
        "0",
        FAKE_AWS_TABLE_STATUS="UPDATING,ACTIVE",
        FAKE_AWS_DOWN="eu-west-1",  # the old primary region is down: it is never asked
    )
    assert result.returncode == 0, result.stderr
    assert aws_calls(table_runbook) == ["describe-table", "describe-table"]
    assert aws_regions(table_runbook) == ["us-west-2", "us-west-2"]
    after = table_runbook.stack_file.read_text()
    assert after.replace("primaryRegion: us-west-2", "primaryRegion: eu-west-1") == before
    assert "golinks-prod-links is ACTIVE in us-west-2" in result.stdout


def test_a_dynamodb_failover_to_an_unreachable_region_moves_nothing(table_runbook):
    before = table_runbook.stack_file.read_text()
    result = table_runbook(
        "promote", "--to-region", "us-west-2", "--execute", FAKE_AWS_DOWN="us-west-2"
    )
    assert result.returncode == 1
    assert "cannot ask AWS for golinks-prod-links in us-west-2" in result.stderr
    assert "Traceback" not in result.stderr
    assert table_runbook.stack_file.read_text() == before


def test_a_dynamodb_failover_gives_up_on_a_replica_that_never_gets_ready(table_runbook):
    before = table_runbook.stack_file.read_text()
    result = table_runbook(
        "promote",
        "--to-region",
        "ap-southeast-1",
        "--execute",
        "--interval",
        "0",
        "--timeout",
        "0",
        FAKE_AWS_TABLE_STATUS="CREATING",
    )
    assert result.returncode == 1 and "is not ACTIVE in ap-southeast-1" in result.stderr
    assert table_runbook.stack_file.read_text() == before


def test_a_dynamodb_failover_rerun_after_the_update_resumes(table_runbook):
    # The failover's `pulumi up` ran, then the publish failed: run it again.
    table_runbook.outputs.write_text(
        json.dumps({**DYNAMODB_OUTPUTS, "primary_region": "us-west-2"})
    )
    for _ in range(2):
        result = table_runbook("promote", "--to-region", "us-west-2", "--execute")
        assert result.returncode == 0, result.stderr
    assert "  golinks:primaryRegion: us-west-2\n" in table_runbook.stack_file.read_text()
    assert "failover-global-replication-group" not in aws_calls(table_runbook)


def test_a_dynamodb_stack_without_its_table_output_is_bad_usage(table_runbook):
    table_runbook.outputs.write_text(
        json.dumps({k: v for k, v in DYNAMODB_OUTPUTS.items() if k != "link_table"})
    )
    result = table_runbook("promote", "--to-region", "us-west-2")
    assert result.returncode == 2 and "lack link_table" in result.stderr


def test_the_deploy_check_of_a_dynamodb_stack_follows_the_deployed_writer(table_runbook):
    result = table_runbook("check")
    assert result.returncode == 0, result.stderr
    assert "written from eu-west-1, as Pulumi.prod.yaml says" in result.stdout
    assert not table_runbook.log.exists()  # no AWS call: the writer is the stack's choice
    # After the failover's `pulumi up`, main's file (still eu-west-1) must not deploy ...
    table_runbook.outputs.write_text(
        json.dumps({**DYNAMODB_OUTPUTS, "primary_region": "us-west-2"})
    )
    refused = table_runbook("check")
    assert refused.returncode == 1
    assert "writes its link table from us-west-2" in refused.stderr
    assert "would move the writer back to eu-west-1" in refused.stderr
    # ... until the failover's pull request is merged.
    text = table_runbook.stack_file.read_text()
    table_runbook.stack_file.write_text(
        text.replace("primaryRegion: eu-west-1", "primaryRegion: us-west-2")
    )
    assert table_runbook("check").returncode == 0


# -- deploying only main's tip ---------------------------------------------------------


def tip_of_main(github, ref: str = "refs/heads/main", sha: str = MAIN_SHA, **env: str):
    return script(
        "tip_of_main",
        "--stack",
        "prod",
        env=github_env(github, GITHUB_REF=ref, GITHUB_SHA=sha, **env),
    )


def test_the_tip_of_main_is_deployed(github):
    result = tip_of_main(github)
    assert result.returncode == 0, result.stderr
    assert f"{MAIN_SHA[:12]} is the tip of main: deploying prod" in result.stdout


def test_a_dispatch_from_another_branch_is_refused(github):
    result = tip_of_main(github, ref="refs/heads/try-something")
    assert result.returncode == 1
    assert "this run is for refs/heads/try-something, and prod is deployed from main only" in (
        result.stderr
    )
    assert result.stdout.startswith("::error::refusing to change prod")


def test_a_rerun_of_an_older_commit_is_refused_instead_of_rolling_back(github):
    FakeGitHub.refs["main"] = "b" * 40  # a newer commit landed after this run started
    result = tip_of_main(github)
    assert result.returncode == 1
    assert f"this run is for {MAIN_SHA[:12]}, but main is now at {'b' * 12}" in result.stderr
    assert "would roll prod back" in result.stderr


def test_main_s_tip_unknown_means_nothing_is_deployed(github):
    result = tip_of_main(github, GITHUB_API_URL="http://127.0.0.1:1")
    assert result.returncode == 1 and "cannot read the tip of main from GitHub" in result.stderr
    assert "Traceback" not in result.stderr


# -- the failover's pull request -------------------------------------------------------

FAILOVER_BRANCH = "failover/prod-us-west-2"


@pytest.fixture
def proposal(github, tmp_path):
    stack_file = tmp_path / "Pulumi.prod.yaml"
    on_main = (REPO / "Pulumi.prod.yaml").read_bytes()
    FakeGitHub.files[("main", "Pulumi.prod.yaml")] = on_main
    stack_file.write_bytes(
        on_main.replace(b"primaryRegion: eu-west-1", b"primaryRegion: us-west-2")
    )

    def propose() -> subprocess.CompletedProcess:
        return script(
            "propose_change",
            "--file",
            "Pulumi.prod.yaml",
            "--branch",
            FAILOVER_BRANCH,
            "--message",
            "Make us-west-2 the primary region of prod",
            "--title",
            "Failover: prod primary is now us-west-2",
            env=github_env(github),
            cwd=tmp_path,
        )

    propose.wanted = stack_file.read_bytes()
    return propose


def writes() -> list[tuple[str, str]]:
    return [(method, path) for method, path in FakeGitHub.requests if method != "GET"]


def test_the_failover_change_is_proposed_on_a_stable_branch(proposal):
    result = proposal()
    assert result.returncode == 0, result.stderr
    assert f"created branch {FAILOVER_BRANCH} from main" in result.stdout
    assert "opened pull request #40" in result.stdout
    assert FakeGitHub.files[(FAILOVER_BRANCH, "Pulumi.prod.yaml")] == proposal.wanted
    (pr,) = FakeGitHub.pulls
    assert (pr["head"], pr["base"], pr["title"]) == (
        FAILOVER_BRANCH,
        "main",
        "Failover: prod primary is now us-west-2",
    )


def test_a_rerun_reuses_the_branch_and_the_open_pull_request(proposal):
    assert proposal().returncode == 0
    before = writes()
    result = proposal()
    assert result.returncode == 0, result.stderr
    assert f"{FAILOVER_BRANCH} already has this Pulumi.prod.yaml" in result.stdout
    assert "pull request #40 is already open" in result.stdout
    assert writes() == before  # nothing pushed, nothing opened
    assert len(FakeGitHub.pulls) == 1


def test_a_rerun_after_the_branch_was_left_behind_commits_onto_it(proposal):
    # An earlier run created the branch and died before committing.
    FakeGitHub.refs[FAILOVER_BRANCH] = MAIN_SHA
    FakeGitHub.files[(FAILOVER_BRANCH, "Pulumi.prod.yaml")] = FakeGitHub.files[
        ("main", "Pulumi.prod.yaml")
    ]
    result = proposal()
    assert result.returncode == 0, result.stderr
    assert "created branch" not in result.stdout
    assert f"committed Pulumi.prod.yaml to {FAILOVER_BRANCH}" in result.stdout
    assert FakeGitHub.files[(FAILOVER_BRANCH, "Pulumi.prod.yaml")] == proposal.wanted


def test_nothing_is_proposed_once_main_has_the_change(proposal):
    FakeGitHub.files[("main", "Pulumi.prod.yaml")] = proposal.wanted
    result = proposal()
    assert result.returncode == 0 and "main already has this Pulumi.prod.yaml" in result.stdout
    assert writes() == []


def test_a_refusal_from_github_is_reported(proposal, github):
    FakeGitHub.refs.pop("main")
    result = proposal()
    assert result.returncode == 1 and "GitHub reports no branch main" in result.stderr
    assert "Traceback" not in result.stderr


# -- pulumi preview and up -------------------------------------------------------------

FAKE_PULUMI = r"""#!/usr/bin/env python3
import json, os, sys
with open(os.environ["FAKE_PULUMI_LOG"], "a") as out:
    out.write(json.dumps(sys.argv[1:]) + "\n")
mode = os.environ.get("FAKE_PULUMI_MODE", "ok")
if "--json" in sys.argv:
    print("warning: a diagnostic on stderr", file=sys.stderr)
    print(json.dumps({"steps": [{"op": "create", "urn": "urn:pulumi:prod::golinks::x"}]}))
    sys.exit(0)
print("Previewing update (org/golinks/prod)")
if mode == "long":
    for i in range(20000):
        print(f"    ~ aws:lambda:Function redirect-{i} update [diff: ~code]")
if mode == "conflict":
    print("error: [409] Conflict: Another update is currently in progress.")
    sys.exit(255)
if mode == "policy":
    print("Policy Violations:")
    print("    [mandatory]  golinks v0.1.0  no-public-buckets (aws:s3:Bucket: index)")
    print("error: preview failed")
    sys.exit(255)
print("\x1b[32m    + aws:s3:Bucket index create\x1b[0m")
print("Resources:")
print("    + 1 to create")
print("    41 unchanged")
"""


@pytest.fixture
def pulumi_cli(tmp_path):
    bin_dir = fake_cli(tmp_path, "pulumi", FAKE_PULUMI)
    log = tmp_path / "pulumi.log"
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "PulumiPolicy.yaml").write_text("runtime: python\n")

    def run(*args: str, mode: str = "ok", github=None) -> subprocess.CompletedProcess:
        env = {
            **(github_env(github) if github else {**os.environ, "PYTHONPATH": str(REPO)}),
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "FAKE_PULUMI_LOG": str(log),
            "FAKE_PULUMI_MODE": mode,
        }
        args = tuple(str(tmp_path / "policy") if a == "policy" else a for a in args)
        return script("pulumi_run", *args, env=env)

    run.calls = lambda: [json.loads(line) for line in log.read_text().splitlines()]
    return run


def test_up_runs_the_policy_pack_without_prompting(pulumi_cli):
    result = pulumi_cli("up", "--stack", "org/golinks/prod", "--policy-pack", "policy")
    assert result.returncode == 0, result.stderr
    assert "+ 1 to create" in result.stdout  # streamed to the job log
    (call,) = pulumi_cli.calls()
    assert call[:3] == ["up", "--stack", "org/golinks/prod"]
    assert call[call.index("--policy-pack") + 1].endswith("/policy")
    assert "--yes" in call and "--non-interactive" in call


def test_a_pulumi_cloud_conflict_is_explained(pulumi_cli):
    result = pulumi_cli(
        "up", "--stack", "org/golinks/prod", "--policy-pack", "policy", mode="conflict"
    )
    assert result.returncode == 255
    assert "another update of this stack is running, so this one changed nothing" in result.stderr
    assert "pulumi cancel" in result.stderr and "docs/delivery.md" in result.stderr
    assert "::error::Pulumi Cloud refused the update of org/golinks/prod" in result.stdout


def test_a_missing_policy_pack_is_refused_before_pulumi_runs(pulumi_cli, tmp_path):
    result = pulumi_cli(
        "up", "--stack", "org/golinks/prod", "--policy-pack", str(tmp_path / "nope")
    )
    assert result.returncode == 2 and "no PulumiPolicy.yaml there" in result.stderr
    assert not (tmp_path / "pulumi.log").exists()


def preview(pulumi_cli, github, tmp_path, stack: str, mode: str = "ok"):
    body = tmp_path / f"preview-{stack}.md"
    result = pulumi_cli(
        "preview",
        "--stack",
        f"org/golinks/{stack}",
        "--policy-pack",
        "policy",
        "--comment-file",
        str(body),
        "--label",
        stack,
        mode=mode,
    )
    posted = script("pr_comment", "--pr", "7", "--body-file", str(body), env=github_env(github))
    assert posted.returncode == 0, posted.stderr
    return result, body.read_text()


def test_one_preview_comment_per_stack_edited_in_place_on_a_busy_pull_request(
    pulumi_cli, github, tmp_path
):
    FakeGitHub.comments = [{"id": i, "body": f"review {i}", "user": BOT} for i in range(120)]
    for stack in ("dev", "prod", "dev", "prod"):
        result, body = preview(pulumi_cli, github, tmp_path, stack)
        assert result.returncode == 0, result.stderr
    ours = [c for c in FakeGitHub.comments if "golinks:pulumi-preview" in c["body"]]
    assert [c["body"].splitlines()[0] for c in ours] == [
        "<!-- golinks:pulumi-preview:dev -->",
        "<!-- golinks:pulumi-preview:prod -->",
    ]
    assert "### Pulumi preview: prod" in body and "succeeded" in body
    assert "+ 1 to create\n    41 unchanged" in body
    assert "\x1b[" not in body  # no terminal colours in the comment
    assert pulumi_cli.calls()[-1][:3] == ["preview", "--stack", "org/golinks/prod"]


def test_a_failed_preview_is_commented_with_its_reason(pulumi_cli, github, tmp_path):
    result, body = preview(pulumi_cli, github, tmp_path, "staging", mode="policy")
    assert result.returncode == 255
    assert "**failed** (exit 255)" in body and "no-public-buckets" in body
    assert FakeGitHub.comments[-1]["body"] == body


def test_a_long_preview_keeps_its_summary_and_fits_in_a_comment(pulumi_cli, github, tmp_path):
    result, body = preview(pulumi_cli, github, tmp_path, "prod", mode="long")
    assert result.returncode == 0
    assert len(body) < 65_000 and "… (the start is cut" in body
    assert body.rstrip().endswith("</details>") and "41 unchanged" in body
    assert "(truncated; see the job log" not in FakeGitHub.comments[-1]["body"]


# -- the link diff when S3 cannot be read ----------------------------------------------


def test_a_link_diff_that_cannot_reach_s3_comments_the_error(github, s3_server, tmp_path):
    diff = subprocess.run(
        [
            sys.executable,
            "-m",
            "functions.links",
            "diff",
            "--against-s3",
            "s3://no-such-bucket-anywhere/index/links.json",
            "--format",
            "markdown",
            "--label",
            "prod",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
        check=False,
    )
    assert diff.returncode == 3
    body = tmp_path / "link-diff.md"
    body.write_text(diff.stdout)
    posted = script("pr_comment", "--pr", "7", "--body-file", str(body), env=github_env(github))
    assert posted.returncode == 0, posted.stderr
    (shown,) = [c["body"] for c in FakeGitHub.comments]
    assert shown.startswith("<!-- golinks:link-diff:prod -->\n### Link changes for prod")
    assert "**Cannot compare with the published links:**" in shown
    assert "S3 s3://no-such-bucket-anywhere/index/links.json" in shown
    assert "NoSuchBucket" in shown


def test_a_preview_as_json_for_the_targeted_failover_update(pulumi_cli, tmp_path):
    plan = tmp_path / "preview.json"
    result = pulumi_cli(
        "preview",
        "--stack",
        "org/golinks/prod",
        "--policy-pack",
        "policy",
        "--json-file",
        str(plan),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(plan.read_text())["steps"][0]["op"] == "create"
    assert "a diagnostic on stderr" in result.stdout  # the log still shows what went on
    (call,) = pulumi_cli.calls()
    assert "--json" in call and "--policy-pack" in call


def test_a_targeted_update_changes_only_the_listed_resources(pulumi_cli, tmp_path):
    targets = tmp_path / "targets.txt"
    targets.write_text("urn:pulumi:prod::golinks::a\nurn:pulumi:prod::golinks::b\n")
    up = ("up", "--stack", "org/golinks/prod", "--policy-pack", "policy")
    result = pulumi_cli(*up, "--target-file", str(targets))
    assert result.returncode == 0, result.stderr
    (call,) = pulumi_cli.calls()
    assert call[-4:] == [
        "--target",
        "urn:pulumi:prod::golinks::a",
        "--target",
        "urn:pulumi:prod::golinks::b",
    ]
    targets.write_text("\n")
    refused = pulumi_cli(*up, "--target-file", str(targets))
    assert refused.returncode == 2 and "names no resource" in refused.stderr
