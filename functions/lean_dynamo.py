"""A minimal DynamoDB client for the redirect and health paths: signed GetItem and BatchGetItem.

Why not boto3 here: importing boto3 and making a client costs far more than a
whole cold redirect (see `make bench`, suite dynamo_store). This is
`http.client` on one keep-alive connection plus an AWS Signature Version 4
signer (hashlib/hmac), checked against botocore's own signer in the tests. The
sync and admin paths keep boto3.

Credentials come from the environment the Lambda runtime sets
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN); the endpoint
from AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL like boto3 (a local
DynamoDB), else the region's public endpoint (reached through the VPC's
gateway endpoint).

Failure model: any socket error, timeout, non-200 answer or surprise closes
the connection and raises DynamoUnavailable; the next call reconnects. A
keep-alive connection the service closed while the container was frozen is
retried once on a fresh one.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import time
from urllib.parse import urlsplit

from functions.store import StoreUnavailable

SERVICE = "dynamodb"
TARGET_PREFIX = "DynamoDB_20120810."
CONTENT_TYPE = "application/x-amz-json-1.0"


class DynamoUnavailable(StoreUnavailable):
    """DynamoDB could not be reached, did not answer in time, or refused the call."""


def endpoint_for(region: str, env=os.environ) -> str:
    return (
        env.get("AWS_ENDPOINT_URL_DYNAMODB")
        or env.get("AWS_ENDPOINT_URL")
        or f"https://dynamodb.{region}.amazonaws.com"
    )


class SigV4Signer:
    """AWS Signature Version 4 for JSON-protocol POSTs to `/` (no query string).

    The derived signing key depends only on the day, so it is computed once a day.
    """

    def __init__(self, access_key: str, secret_key: str, token: str | None, region: str):
        self.access_key = access_key
        self.secret_key = secret_key
        self.token = token
        self.region = region
        self._day = ""
        self._key = b""

    def headers(self, host: str, target: str, body: bytes, amz_date: str) -> dict[str, str]:
        """Every header of the request, Authorization included; amz_date is YYYYMMDDTHHMMSSZ."""
        headers = {
            "content-type": CONTENT_TYPE,
            "host": host,
            "x-amz-date": amz_date,
            "x-amz-target": target,
        }
        if self.token:
            headers["x-amz-security-token"] = self.token
        names = sorted(headers)
        signed = ";".join(names)
        canonical = "\n".join(
            [
                "POST",
                "/",
                "",
                "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in names),
                signed,
                hashlib.sha256(body).hexdigest(),
            ]
        )
        day = amz_date[:8]
        scope = f"{day}/{self.region}/{SERVICE}/aws4_request"
        to_sign = (
            f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n"
            f"{hashlib.sha256(canonical.encode()).hexdigest()}"
        )
        signature = hmac.new(self._signing_key(day), to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}"
        )
        return headers

    def _signing_key(self, day: str) -> bytes:
        if day != self._day:
            key = ("AWS4" + self.secret_key).encode()
            for part in (day, self.region, SERVICE, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._day, self._key = day, key
        return self._key


class LeanDynamo:
    """One connection to one region's DynamoDB, opened lazily, reopened after any failure.

    connect_timeout and read_timeout are in seconds.
    """

    def __init__(
        self,
        region: str,
        *,
        endpoint: str | None = None,
        credentials: tuple[str, str, str | None] | None = None,
        connect_timeout: float = 0.25,
        read_timeout: float = 0.1,
        env=os.environ,
    ):
        parts = urlsplit(endpoint or endpoint_for(region, env))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("a DynamoDB endpoint must look like http[s]://host[:port]")
        self.tls = parts.scheme == "https"
        self.hostname = parts.hostname
        self.port = parts.port
        self.host = parts.netloc
        if credentials is None:
            if not env.get("AWS_ACCESS_KEY_ID") or not env.get("AWS_SECRET_ACCESS_KEY"):
                raise ValueError("no AWS credentials in the environment for DynamoDB")
            credentials = (
                env["AWS_ACCESS_KEY_ID"],
                env["AWS_SECRET_ACCESS_KEY"],
                env.get("AWS_SESSION_TOKEN") or None,
            )
        self.signer = SigV4Signer(*credentials, region)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._connection: http.client.HTTPConnection | None = None

    def get_item(self, table: str, key: str, value: str, consistent: bool = False) -> dict | None:
        """The item whose string key attribute `key` is `value` (DynamoDB JSON), or None."""
        request = {"TableName": table, "Key": {key: {"S": value}}}
        if consistent:
            request["ConsistentRead"] = True
        body = json.dumps(request, separators=(",", ":")).encode()
        return self.call("GetItem", body).get("Item")

    def batch_get_item(self, table: str, key: str, values: list[str]) -> dict[str, dict]:
        """The items (up to 100) whose string key `key` is one of `values`, by that value.

        Keys DynamoDB leaves unprocessed (throttling) are asked for once more;
        still unprocessed, the call counts as failed.
        """
        found: dict[str, dict] = {}
        keys = [{key: {"S": value}} for value in values]
        for _ in range(2):
            body = json.dumps(
                {"RequestItems": {table: {"Keys": keys}}}, separators=(",", ":")
            ).encode()
            reply = self.call("BatchGetItem", body)
            for item in reply.get("Responses", {}).get(table, []):
                found[item[key]["S"]] = item
            keys = reply.get("UnprocessedKeys", {}).get(table, {}).get("Keys")
            if not keys:
                return found
        raise DynamoUnavailable(f"{self.host}: BatchGetItem left {len(keys)} keys unprocessed")

    def call(self, operation: str, body: bytes) -> dict:
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        headers = self.signer.headers(self.host, TARGET_PREFIX + operation, body, amz_date)
        reused = self._connection is not None
        try:
            status, data = self._roundtrip(body, headers)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
            self.close()
            if not reused:
                raise DynamoUnavailable(f"{self.host}: {exc or type(exc).__name__}") from None
            status, data = self._attempt(body, headers)  # the idle connection had been closed
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise DynamoUnavailable(f"{self.host}: {exc or type(exc).__name__}") from None
        try:
            reply = json.loads(data)
        except ValueError:
            self.close()
            raise DynamoUnavailable(f"{self.host}: HTTP {status}, not JSON") from None
        if status != 200:
            kind = str(reply.get("__type", "")).rpartition("#")[2] or f"HTTP {status}"
            raise DynamoUnavailable(f"{self.host}: {kind}: {reply.get('message', '')}".rstrip())
        return reply

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None

    def _attempt(self, body: bytes, headers: dict) -> tuple[int, bytes]:
        try:
            return self._roundtrip(body, headers)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise DynamoUnavailable(f"{self.host}: {exc or type(exc).__name__}") from None

    def _roundtrip(self, body: bytes, headers: dict) -> tuple[int, bytes]:
        if self._connection is None:
            self._connection = self._connect()
        connection = self._connection
        connection.request("POST", "/", body, headers)
        response = connection.getresponse()
        return response.status, response.read()

    def _connect(self) -> http.client.HTTPConnection:
        kind = _HTTPSConnection if self.tls else _HTTPConnection
        connection = kind(self.hostname, self.port, timeout=self.connect_timeout)
        connection.read_timeout = self.read_timeout
        return connection


class _ReadTimeout:
    """Connect within the connect timeout, then wait at most read_timeout for answers.

    http.client reopens a connection the server closed by itself; this keeps
    the read timeout on every socket it opens.
    """

    read_timeout: float

    def connect(self) -> None:
        super().connect()
        self.sock.settimeout(self.read_timeout)


class _HTTPConnection(_ReadTimeout, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_ReadTimeout, http.client.HTTPSConnection):
    pass
