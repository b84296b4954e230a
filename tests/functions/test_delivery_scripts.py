"""The scripts CI calls: the pull-request comment and the Datastore failover runbook.

GitHub and AWS cannot run here, so each script talks to a local stand-in that
implements the few calls it makes (GitHub's issue-comment REST endpoints; an
`aws` executable answering like the AWS CLI), and the tests check what the
script asked of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
BOT = {"login": "github-actions[bot]", "type": "Bot"}


class FakeGitHub(BaseHTTPRequestHandler):
    comments: list[dict] = []  # noqa: RUF012 - one fake per test, reset by the fixture
    requests: list[tuple[str, str]] = []  # noqa: RUF012

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

    def do_GET(self):
        self.requests.append(("GET", self.path))
        if not self._authorised():
            return
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        page, per_page = int(query["page"][0]), int(query["per_page"][0])
        self._reply(200, self.comments[(page - 1) * per_page : page * per_page])

    def do_POST(self):
        self.requests.append(("POST", self.path))
        if self._authorised():
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            comment = {"id": 1000 + len(self.comments), "body": body["body"], "user": BOT}
            self.comments.append(comment)
            self._reply(201, comment)

    def do_PATCH(self):
        self.requests.append(("PATCH", self.path))
        if self._authorised():
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            comment_id = int(self.path.rsplit("/", 1)[1])
            comment = next(c for c in self.comments if c["id"] == comment_id)
            comment["body"] = body["body"]
            self._reply(200, comment)

    def log_message(self, *args):
        pass


@pytest.fixture
def github():
    FakeGitHub.comments, FakeGitHub.requests = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGitHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def comment(github, body: str, tmp_path: Path, token: str = "test-token", pr: int = 7):
    body_file = tmp_path / "body.md"
    body_file.write_text(body)
    env = {
        **os.environ,
        "GITHUB_TOKEN": token,
        "GITHUB_REPOSITORY": "example/golinks",
        "GITHUB_API_URL": f"http://127.0.0.1:{github.server_port}",
        "PYTHONPATH": str(REPO),
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.pr_comment",
            "--pr",
            str(pr),
            "--body-file",
            str(body_file),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=30,
        check=False,
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
if "describe-global-replication-groups" in sys.argv:
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


@pytest.fixture
def runbook(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(FAKE_AWS)
    (bin_dir / "aws").chmod(0o755)
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


@pytest.mark.parametrize(
    ("region", "message"),
    [("eu-west-1", "already the primary region"), ("sa-east-1", "not one of the stack's regions")],
)
def test_impossible_targets_are_refused(runbook, region, message):
    result = runbook("promote", "--to-region", region)
    assert result.returncode == 2 and message in result.stderr


def test_a_rerun_after_the_promotion_does_not_promote_again(runbook):
    result = runbook(
        "promote", "--to-region", "us-west-2", "--execute", FAKE_AWS_ALREADY_PROMOTED="1"
    )
    assert result.returncode == 0, result.stderr
    assert "not promoting again" in result.stdout
    assert "failover-global-replication-group" not in aws_calls(runbook)
    assert "  golinks:primaryRegion: us-west-2\n" in runbook.stack_file.read_text()


def test_the_deploy_check_passes_when_the_file_matches_the_running_stack(runbook):
    result = runbook("check")
    assert result.returncode == 0, result.stderr
    assert "primary region eu-west-1" in result.stdout


def test_the_deploy_check_stops_a_deploy_that_would_undo_a_failover(runbook):
    runbook.outputs.write_text(json.dumps({**OUTPUTS, "primary_region": "us-west-2"}))
    result = runbook("check")
    assert result.returncode == 1
    assert "says golinks:primaryRegion: eu-west-1, but prod takes writes in us-west-2" in (
        result.stderr
    )
    # Once the failover's pull request (this one-line change) is merged, deploys go ahead.
    text = runbook.stack_file.read_text()
    runbook.stack_file.write_text(
        text.replace("primaryRegion: eu-west-1", "primaryRegion: us-west-2")
    )
    assert runbook("check").returncode == 0


def test_the_deploy_check_reads_the_project_default_and_allows_a_first_deploy(runbook):
    text = runbook.stack_file.read_text().replace("  golinks:primaryRegion: eu-west-1\n", "")
    runbook.stack_file.write_text(text)
    runbook.outputs.write_text(json.dumps({**OUTPUTS, "primary_region": "us-west-2"}))
    assert "but prod takes writes in us-west-2" in runbook("check").stderr  # default eu-west-1
    runbook.outputs.write_text("{}")  # not deployed yet
    result = runbook("check")
    assert result.returncode == 0 and "no deployed primary region yet" in result.stdout
