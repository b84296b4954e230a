"""Function configuration: environment variables, and the service secret in AWS."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from functions import redirect
from functions.region import ConfigError, Settings

from .conftest import http_event

SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:111111111111:secret:golinks/prod/service-AbCdEf"


class SecretsExtension(BaseHTTPRequestHandler):
    """The AWS Parameters and Secrets Lambda Extension's documented HTTP interface."""

    secret: str | None = None
    requests: ClassVar[list] = []

    def do_GET(self):
        SecretsExtension.requests.append(
            (self.path, self.headers.get("X-Aws-Parameters-Secrets-Token"))
        )
        query = parse_qs(urlsplit(self.path).query)
        if self.headers.get("X-Aws-Parameters-Secrets-Token") != "session-token":
            self.send_response(401)
            self.end_headers()
            return
        if query.get("secretId") != [SECRET_ARN] or self.secret is None:
            self.send_response(404)
            self.end_headers()
            return
        body = json.dumps({"ARN": SECRET_ARN, "SecretString": self.secret}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def extension():
    server = ThreadingHTTPServer(("127.0.0.1", 0), SecretsExtension)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    SecretsExtension.requests = []
    yield server
    server.shutdown()
    server.server_close()


def aws_env(port: int, **extra) -> dict:
    return {
        "REDIS_URL": "rediss://master.golinks.abc123.euw1.cache.amazonaws.com:6379/0",
        "SERVICE_SECRET_ARN": SECRET_ARN,
        "AWS_SESSION_TOKEN": "session-token",
        "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(port),
        "AWS_REGION": "eu-west-1",
        **extra,
    }


def test_the_service_secret_comes_from_the_extension(extension):
    SecretsExtension.secret = json.dumps({"redis_auth_token": "tok", "origin_verify": "ov"})
    settings = Settings.from_env(aws_env(extension.server_port))
    assert (settings.redis_password, settings.origin_verify) == ("tok", "ov")
    assert SecretsExtension.requests[0][0].startswith("/secretsmanager/get?secretId=arn%3Aaws")


@pytest.mark.parametrize(
    ("secret", "env", "message"),
    [
        ("not json", {}, "not the expected JSON"),
        (None, {}, "HTTP 404"),
        ("{}", {"AWS_SESSION_TOKEN": "stale"}, "HTTP 401"),
        ("{}", {"PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": "1"}, "cannot read the service secret"),
    ],
)
def test_secret_problems_are_clear_configuration_errors(extension, secret, env, message):
    SecretsExtension.secret = secret
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(aws_env(extension.server_port, **env))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "REDIS_URL is not set"),
        (
            {"REDIS_URL": "redis://x", "REDIRECT_CACHE_SECONDS": "five"},
            "REDIRECT_CACHE_SECONDS must be",
        ),
    ],
)
def test_missing_or_bad_settings_are_named(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_local_defaults():
    settings = Settings.from_env({"REDIS_URL": "redis://127.0.0.1:6379/0", "ORIGIN_VERIFY": "x"})
    assert (settings.redirect_cache_seconds, settings.not_found_cache_seconds) == (300, 60)
    assert (settings.index_key, settings.origin_verify, settings.redis_password) == (
        "index/links.json",
        "x",
        None,
    )


def test_a_redirect_container_configured_from_the_secret_checks_origin(
    extension, configure, published
):
    _, replica, _, _ = published
    SecretsExtension.secret = json.dumps({"origin_verify": "from-secret"})
    configure(**{**aws_env(extension.server_port), "REDIS_URL": replica.url})
    assert redirect.handler(http_event("/docs"), None)["statusCode"] == 403
    ok = redirect.handler(http_event("/docs", headers={"x-origin-verify": "from-secret"}), None)
    assert ok["statusCode"] == 302
