"""What a function container knows about its region: settings and clients, made once.

Everything here is created lazily on first use and kept for the container's
life. Settings come from environment variables; in AWS the Redis AUTH token
and the origin-verify value come from one Secrets Manager secret read through
the AWS Parameters and Secrets Lambda Extension (a local HTTP call, no boto3).

The link store is chosen once per container by LINK_STORE: `elasticache`
(Redis, the default) or `dynamodb`. Each store's client is imported only when
that store is chosen, so neither pays for the other's at cold start.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from urllib.parse import quote

from functions.store import RETRY_AFTER_S, FailureGuard

DEFAULT_INDEX_KEY = "index/links.json"
ELASTICACHE, DYNAMODB = "elasticache", "dynamodb"
STORES = (ELASTICACHE, DYNAMODB)
#: A GET on an in-region ElastiCache node answers in well under 1 ms (p99),
#: and a TLS connection is up in a few ms; past these the node is failing
#: over or overloaded and the S3 fallback answers faster than waiting.
REDIS_CONNECT_TIMEOUT_S = 0.25
REDIS_READ_TIMEOUT_S = 0.1
#: A GetItem in region answers in a few ms (p99 tens of ms); the first call of a
#: container also opens TLS. Past these the S3 fallback answers faster.
DYNAMODB_CONNECT_TIMEOUT_S = 0.5
DYNAMODB_READ_TIMEOUT_S = 0.25
#: After a failure, requests skip the store for this long, then one tries again.
REDIS_RETRY_AFTER_S = RETRY_AFTER_S


class ConfigError(RuntimeError):
    """The function's configuration is incomplete or wrong."""


@dataclass(frozen=True)
class Settings:
    region: str
    primary_region: str
    redis_url: str | None
    redis_password: str | None
    origin_verify: str | None
    index_bucket: str | None
    index_key: str
    redirect_cache_seconds: int
    not_found_cache_seconds: int
    links_repository_url: str | None = None
    """The link files' GitHub repository (web URL): 404 pages offer to create the link."""
    store: str = ELASTICACHE
    link_table: str | None = None
    """The DynamoDB table (store dynamodb); the functions read their own region's replica."""
    pointer_refresh_s: float | None = None
    """How often a container re-reads its region's pointer item (None: dynamo_store's
    default); the sync waits as long before pruning, so both read the same setting."""

    @classmethod
    def from_env(cls, env=os.environ) -> Settings:
        store = env.get("LINK_STORE") or ELASTICACHE
        if store not in STORES:
            raise ConfigError(f"LINK_STORE must be one of {', '.join(STORES)}, not {store!r}")
        if store == ELASTICACHE and not env.get("REDIS_URL"):
            raise ConfigError("REDIS_URL is not set")
        if store == DYNAMODB and not env.get("LINK_TABLE"):
            raise ConfigError("LINK_TABLE is not set (LINK_STORE is dynamodb)")
        secret = _service_secret(env) if env.get("SERVICE_SECRET_ARN") else {}
        region = env.get("AWS_REGION", "local")
        return cls(
            region=region,
            primary_region=env.get("PRIMARY_REGION", region),
            redis_url=env.get("REDIS_URL") if store == ELASTICACHE else None,
            redis_password=secret.get("redis_auth_token"),
            origin_verify=secret.get("origin_verify") or env.get("ORIGIN_VERIFY") or None,
            index_bucket=env.get("LINK_INDEX_BUCKET") or None,
            index_key=env.get("LINK_INDEX_KEY") or DEFAULT_INDEX_KEY,
            redirect_cache_seconds=_seconds(env, "REDIRECT_CACHE_SECONDS", 300),
            not_found_cache_seconds=_seconds(env, "NOT_FOUND_CACHE_SECONDS", 60),
            links_repository_url=env.get("LINKS_REPOSITORY_URL") or None,
            store=store,
            link_table=env.get("LINK_TABLE") if store == DYNAMODB else None,
            pointer_refresh_s=seconds(env, "LINK_POINTER_REFRESH_S"),
        )


def _seconds(env, name: str, default: int) -> int:
    raw = env.get(name, "")
    if not raw:
        return default
    if not raw.isdigit():
        raise ConfigError(f"{name} must be a whole number of seconds, not {raw!r}")
    return int(raw)


def seconds(env, name: str) -> float | None:
    """A duration setting in (fractional) seconds; None when unset."""
    raw = env.get(name, "")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ConfigError(f"{name} must be a number of seconds, not {raw!r}")
    return value


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


@cache
def settings() -> Settings:
    return Settings.from_env()


@cache
def links():
    """The region's link store as redirects read it (RedisLinks or DynamoLinks)."""
    config = settings()
    if config.store == DYNAMODB:
        return dynamodb()
    from functions.redis_store import RedisLinks  # noqa: PLC0415 - only the store in use

    return RedisLinks(redis())


@cache
def dynamodb():
    """The region's replica of the link table, through the lean signed client."""
    from functions.dynamo_store import DynamoLinks  # noqa: PLC0415 - only the store in use
    from functions.lean_dynamo import LeanDynamo  # noqa: PLC0415

    config = settings()
    client = LeanDynamo(
        config.region,
        connect_timeout=DYNAMODB_CONNECT_TIMEOUT_S,
        read_timeout=DYNAMODB_READ_TIMEOUT_S,
    )
    options = {} if config.pointer_refresh_s is None else {"refresh_s": config.pointer_refresh_s}
    return DynamoLinks(
        client, config.link_table, config.region, guard=FailureGuard("DynamoDB"), **options
    )


@cache
def redis():
    """The region's Redis reader (GuardedRedis)."""
    from functions.lean_redis import LeanRedis  # noqa: PLC0415 - only the store in use
    from functions.redis_store import GuardedRedis  # noqa: PLC0415

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


def forget() -> None:
    """Drop every setting and client made so far (tests and benchmarks change the environment)."""
    for made_once in (settings, links, dynamodb, redis, fallback):
        made_once.cache_clear()
