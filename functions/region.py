"""What a function container knows about its region: settings and clients, made once.

Everything here is created lazily on first use and kept for the container's
life. Settings come from environment variables; in AWS the Redis AUTH token
and the origin-verify value come from one Secrets Manager secret read through
the AWS Parameters and Secrets Lambda Extension (a local HTTP call, no boto3).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from functools import cache
from urllib.parse import quote

from functions.lean_redis import LeanRedis, RedisUnavailable

DEFAULT_INDEX_KEY = "index/links.json"
#: A GET on an in-region ElastiCache node answers in well under 1 ms (p99),
#: and a TLS connection is up in a few ms; past these the node is failing
#: over or overloaded and the S3 fallback answers faster than waiting.
REDIS_CONNECT_TIMEOUT_S = 0.25
REDIS_READ_TIMEOUT_S = 0.1
#: After a failure, requests skip Redis for this long, then one tries again.
REDIS_RETRY_AFTER_S = 1.0


class ConfigError(RuntimeError):
    """The function's configuration is incomplete or wrong."""


@dataclass(frozen=True)
class Settings:
    region: str
    primary_region: str
    redis_url: str
    redis_password: str | None
    origin_verify: str | None
    index_bucket: str | None
    index_key: str
    redirect_cache_seconds: int
    not_found_cache_seconds: int
    links_repository_url: str | None = None
    """The link files' GitHub repository (web URL): 404 pages offer to create the link."""

    @classmethod
    def from_env(cls, env=os.environ) -> Settings:
        if not env.get("REDIS_URL"):
            raise ConfigError("REDIS_URL is not set")
        secret = _service_secret(env) if env.get("SERVICE_SECRET_ARN") else {}
        region = env.get("AWS_REGION", "local")
        return cls(
            region=region,
            primary_region=env.get("PRIMARY_REGION", region),
            redis_url=env["REDIS_URL"],
            redis_password=secret.get("redis_auth_token"),
            origin_verify=secret.get("origin_verify") or env.get("ORIGIN_VERIFY") or None,
            index_bucket=env.get("LINK_INDEX_BUCKET") or None,
            index_key=env.get("LINK_INDEX_KEY") or DEFAULT_INDEX_KEY,
            redirect_cache_seconds=_seconds(env, "REDIRECT_CACHE_SECONDS", 300),
            not_found_cache_seconds=_seconds(env, "NOT_FOUND_CACHE_SECONDS", 60),
            links_repository_url=env.get("LINKS_REPOSITORY_URL") or None,
        )


def _seconds(env, name: str, default: int) -> int:
    raw = env.get(name, "")
    if not raw:
        return default
    if not raw.isdigit():
        raise ConfigError(f"{name} must be a whole number of seconds, not {raw!r}")
    return int(raw)


def _service_secret(env) -> dict:
    """The service secret's JSON, through the Parameters and Secrets extension."""
    import http.client  # noqa: PLC0415 - only AWS containers read the secret

    port = int(env.get("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", "2773"))
    connection = http.client.HTTPConnection("localhost", port, timeout=2)
    try:
        connection.request(
            "GET",
            f"/secretsmanager/get?secretId={quote(env['SERVICE_SECRET_ARN'], safe='')}",
            headers={"X-Aws-Parameters-Secrets-Token": env.get("AWS_SESSION_TOKEN", "")},
        )
        response = connection.getresponse()
        body = response.read()
    except OSError as exc:
        raise ConfigError(f"cannot read the service secret: {exc}") from None
    finally:
        connection.close()
    if response.status != 200:
        raise ConfigError(f"cannot read the service secret: HTTP {response.status}")
    try:
        return json.loads(json.loads(body)["SecretString"])
    except (ValueError, KeyError, TypeError):
        raise ConfigError("the service secret is not the expected JSON") from None


class GuardedRedis:
    """The region's Redis reader, skipped for a moment after it fails.

    While Redis is down, requests go straight to the fallback instead of each
    paying a timeout; every REDIS_RETRY_AFTER_S one request tries Redis again,
    so recovery needs no restart.
    """

    def __init__(self, client: LeanRedis):
        self.client = client
        self._down_until = 0.0

    def execute(self, *args: str):
        if time.monotonic() < self._down_until:
            raise RedisUnavailable("Redis failed recently; retrying shortly")
        try:
            return self.client.execute(*args)
        except RedisUnavailable:
            self._down_until = time.monotonic() + REDIS_RETRY_AFTER_S
            raise


@cache
def settings() -> Settings:
    return Settings.from_env()


@cache
def redis() -> GuardedRedis:
    config = settings()
    return GuardedRedis(
        LeanRedis(
            config.redis_url,
            password=config.redis_password,
            connect_timeout=REDIS_CONNECT_TIMEOUT_S,
            read_timeout=REDIS_READ_TIMEOUT_S,
            ca_file=os.environ.get("REDIS_CA_FILE") or None,
        )
    )


@cache
def fallback():
    """The S3 index fallback, or None when no index bucket is configured."""
    config = settings()
    if not config.index_bucket:
        return None
    from functions.fallback import IndexFallback  # noqa: PLC0415 - keeps boto3 off the hot path

    return IndexFallback(config.index_bucket, config.index_key)
