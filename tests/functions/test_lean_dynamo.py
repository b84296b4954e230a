"""The redirect path's DynamoDB client: signed like botocore signs, against a real moto server."""

from __future__ import annotations

import datetime
import json
import socket
import uuid

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from functions.lean_dynamo import DynamoUnavailable, LeanDynamo, SigV4Signer, endpoint_for
from local.dynamo_replication import create_link_table
from local.servers import free_port, local_dynamodb_client

AMZ_DATE = "20261125T141516Z"


@pytest.mark.parametrize("token", [None, "session/token+with=odd chars"])
@pytest.mark.parametrize(
    "body",
    [
        b'{"TableName":"links","Key":{"pk":{"S":"docs"}}}',
        json.dumps({"TableName": "t", "Key": {"pk": {"S": "a/b.c-d_e"}}}).encode(),
        b"",
    ],
)
def test_signature_matches_botocore(monkeypatch, token, body):
    signer = SigV4Signer(
        "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token, "us-west-2"
    )
    ours = signer.headers(
        "dynamodb.us-west-2.amazonaws.com", "DynamoDB_20120810.GetItem", body, AMZ_DATE
    )
    fixed = datetime.datetime(2026, 11, 25, 14, 15, 16)
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: fixed)
    request = AWSRequest(
        method="POST",
        url="https://dynamodb.us-west-2.amazonaws.com/",
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.GetItem",
        },
    )
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    SigV4Auth(credentials, "dynamodb", "us-west-2").add_auth(request)
    assert ours["authorization"] == request.headers["Authorization"]
    assert ours["x-amz-date"] == request.headers["X-Amz-Date"]
    assert ours.get("x-amz-security-token") == request.headers.get("X-Amz-Security-Token")


def test_signing_key_follows_the_day():
    signer = SigV4Signer("AKID", "secret", None, "eu-west-1")
    today = signer.headers("h", "T", b"{}", "20261125T235959Z")["authorization"]
    tomorrow = signer.headers("h", "T", b"{}", "20261126T000000Z")["authorization"]
    assert "20261125/eu-west-1/dynamodb/aws4_request" in today
    assert "20261126/eu-west-1/dynamodb/aws4_request" in tomorrow
    fresh = SigV4Signer("AKID", "secret", None, "eu-west-1")
    assert tomorrow == fresh.headers("h", "T", b"{}", "20261126T000000Z")["authorization"]


def test_endpoint_follows_boto3_settings():
    assert endpoint_for("ap-southeast-1", {}) == "https://dynamodb.ap-southeast-1.amazonaws.com"
    local = {"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ENDPOINT_URL_DYNAMODB": "http://x:2"}
    assert endpoint_for("eu-west-1", local) == "http://x:2"
    with pytest.raises(ValueError, match="no AWS credentials"):
        LeanDynamo("eu-west-1", env={})


@pytest.fixture
def table(dynamodb_regions):
    server = dynamodb_regions["eu-west-1"]
    client = local_dynamodb_client(server.endpoint, "eu-west-1")
    name = f"lean-{uuid.uuid4().hex[:8]}"
    create_link_table(client, name)
    yield server, client, name
    client.delete_table(TableName=name)


def test_get_item_hit_miss_and_reuses_its_connection(table):
    server, client, name = table
    client.put_item(TableName=name, Item={"pk": {"S": "docs"}, "e": {"S": "1 - 302 - 0 x"}})
    lean = LeanDynamo("eu-west-1", endpoint=server.endpoint, credentials=("a", "b", None))
    assert lean.get_item(name, "pk", "docs") == {"pk": {"S": "docs"}, "e": {"S": "1 - 302 - 0 x"}}
    connection = lean._connection
    assert lean.get_item(name, "pk", "missing", consistent=True) is None
    assert lean._connection is connection


def test_refusals_and_dead_endpoints_raise_unavailable(table):
    server, _, name = table
    lean = LeanDynamo("eu-west-1", endpoint=server.endpoint, credentials=("a", "b", None))
    with pytest.raises(DynamoUnavailable, match="ResourceNotFoundException"):
        lean.get_item("no-such-table", "pk", "docs")
    assert lean.get_item(name, "pk", "docs") is None  # still usable afterwards
    dead = LeanDynamo(
        "eu-west-1", endpoint=f"http://127.0.0.1:{free_port()}", credentials=("a", "b", None)
    )
    with pytest.raises(DynamoUnavailable, match=r"127\.0\.0\.1"):
        dead.get_item(name, "pk", "docs")


def test_a_connection_closed_while_idle_is_retried_once(table):
    server, client, name = table
    client.put_item(TableName=name, Item={"pk": {"S": "docs"}, "e": {"S": "v"}})
    lean = LeanDynamo("eu-west-1", endpoint=server.endpoint, credentials=("a", "b", None))
    assert lean.get_item(name, "pk", "docs")
    # What a thawed container finds: a kept-alive socket the service hung up on.
    stale, peer = socket.socketpair()
    peer.close()
    lean._connection.sock = stale
    assert lean.get_item(name, "pk", "docs") == {"pk": {"S": "docs"}, "e": {"S": "v"}}


def test_endpoint_and_credentials_come_from_the_environment_lambda_sets(table, monkeypatch):
    server, client, name = table
    client.put_item(TableName=name, Item={"pk": {"S": "docs"}, "e": {"S": "v"}})
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token")
    lean = LeanDynamo("eu-west-1")
    assert lean.signer.token == "token"
    assert lean.get_item(name, "pk", "docs") == {"pk": {"S": "docs"}, "e": {"S": "v"}}
