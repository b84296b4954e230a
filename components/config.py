"""The stack's configuration, parsed once into a typed, validated object.

`parse(raw)` is pure (a dict of config values in, a StackConfig or a
ConfigError naming every bad key out) so it is tested without Pulumi;
`load()` reads the values from the running stack. Components never read
config: they receive what they need from StackConfig.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from components.planning import (
    GLOBAL_DATASTORE_MAX_SECONDARIES,
    LOG_RETENTION_DAYS,
    SUPPORTED_REGIONS,
    github_repository_problem,
    secrets_extension_layer_region,
)

PROJECT = "golinks"
ENGINES = ("valkey", "redis")
_HOSTNAME_RE = re.compile(r"(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
_NODE_TYPE_RE = re.compile(r"cache\.([a-z][a-z0-9-]*)\.([a-z0-9]+)")
_HEX32_RE = re.compile(r"[0-9a-f]{32}")
_HOSTED_ZONE_RE = re.compile(r"Z[A-Z0-9]{1,31}")
TRAFFIC_ROUTERS = ("cloudflare", "route53")
#: Keys only one traffic router reads: required for it, ignored by the other.
ROUTER_KEYS = {
    "cloudflare": ("cloudflareAccountId", "cloudflareZoneId"),
    "route53": ("route53ZoneId",),
}
LINK_STORES = ("elasticache", "dynamodb")
#: Keys only one link store reads: checked for it, ignored by the other.
STORE_KEYS = {
    "elasticache": (
        "datastoreHomeRegion",
        "cacheEngine",
        "cacheEngineVersion",
        "cacheNodeType",
        "cacheReplicasPerRegion",
    ),
    "dynamodb": ("linkTableHomeRegion",),
}
#: The setting that chooses, and the keys each of its choices owns.
CHOICES = {"trafficRouter": ROUTER_KEYS, "linkStore": STORE_KEYS}

PULUMI_YAML = Path(__file__).resolve().parent.parent / "Pulumi.yaml"


def declared_config(pulumi_yaml: Path = PULUMI_YAML) -> dict[str, object]:
    """The project's config keys and defaults, from Pulumi.yaml (None: required)."""
    declared = yaml.safe_load(pulumi_yaml.read_text())["config"]
    return {key: spec.get("default") for key, spec in declared.items()}


DEFAULTS = declared_config()


class ConfigError(ValueError):
    """The stack configuration is invalid; the message names every bad key."""


@dataclass(frozen=True)
class StackConfig:
    stack: str
    account_id: str
    regions: tuple[str, ...]
    primary_region: str
    datastore_home_region: str
    """Where the Global Datastore was founded (elasticache; empty with dynamodb)."""
    link_store: str
    """elasticache or dynamodb: where the functions read the links."""
    link_table_home_region: str
    """Where the link table was created and is managed from (dynamodb; empty with elasticache)."""
    domain: str
    traffic_router: str
    """cloudflare or route53: who steers users to a region."""
    cloudflare_account_id: str
    cloudflare_zone_id: str
    route53_zone_id: str
    health_check_interval_seconds: int
    health_check_failure_threshold: int
    origin_record_ttl: int
    cache_engine: str
    cache_engine_version: str
    cache_node_type: str
    cache_replicas_per_region: int
    """The cache settings (elasticache; empty and 0 with dynamodb)."""
    lambda_memory_mb: int
    redirect_cache_seconds: int
    waf_rate_limit: int
    waf_blocked_clients: tuple[str, ...]
    github_repository: str
    log_retention_days: int
    function_archive: Path
    secrets_extension_layer_arns: dict[str, str]
    """Region -> the extension layer ARN for that region."""
    noncurrent_version_days: int
    vpc_cidr_base: str
    alarm_email: str
    disposable: bool
    """Destroyed and re-created at will: nothing protected, buckets emptied, secrets freed."""

    @property
    def secondary_regions(self) -> tuple[str, ...]:
        return tuple(region for region in self.regions if region != self.primary_region)


def _regions(value, _values) -> str | None:
    if not (isinstance(value, list) and value and all(isinstance(r, str) for r in value)):
        return "must be a list of AWS region names"
    most = 1 + GLOBAL_DATASTORE_MAX_SECONDARIES
    if len(value) > most:
        return (
            f"{most} regions at most (a Global Datastore has at most "
            f"{GLOBAL_DATASTORE_MAX_SECONDARIES} secondary regions), got {len(value)}"
        )
    if len(set(value)) != len(value):
        return "must not repeat a region"
    unsupported = [region for region in value if region not in SUPPORTED_REGIONS]
    if unsupported:
        return f"{unsupported} not supported (supported: {', '.join(SUPPORTED_REGIONS)})"
    return None


def _primary_region(value, values) -> str | None:
    regions = values["regions"]
    if not isinstance(regions, list) or value not in regions:
        return f"{value!r} must be one of regions {regions}"
    return None


def _matches(pattern: re.Pattern | str, message: str):
    def check(value, _values) -> str | None:
        return None if re.fullmatch(pattern, str(value)) else f"{value!r} {message}"

    return check


def _github_repository(value, _values) -> str | None:
    problem = github_repository_problem(str(value))
    return f"{value!r} {problem}" if problem else None


def _node_type(value, _values) -> str | None:
    node = _NODE_TYPE_RE.fullmatch(str(value))
    if not node:
        return f"{value!r} is not a node type like cache.r7g.large"
    if node.group(1).startswith("t"):
        return (
            f"{value!r} is burstable; a Global Datastore needs m or r node types "
            "(e.g. cache.r7g.large)"
        )
    return None


def _extension_layers(value, values) -> str | None:
    if not (isinstance(value, list) and all(isinstance(arn, str) for arn in value)):
        return "must be a list of layer ARNs, one per region"
    regions: list[str] = []
    for arn in value:
        try:
            regions.append(secrets_extension_layer_region(arn))
        except ValueError as bad:
            return str(bad)
    if len(set(regions)) != len(regions):
        return "must not give two ARNs for one region"
    wanted = values["regions"] if isinstance(values["regions"], list) else []
    missing = [region for region in wanted if region not in regions]
    if missing:
        return f"has no layer ARN for {missing} (look it up in AWS's table, see docs/deploy.md)"
    return None


def _networks(value, _values) -> str | None:
    if not (isinstance(value, list) and all(isinstance(cidr, str) for cidr in value)):
        return "must be a list of networks like 203.0.113.0/24"
    for cidr in value:
        try:
            ipaddress.ip_network(cidr)
        except ValueError as bad:
            return f"{cidr!r} is not a network ({bad})"
    return None


def _whole(low: int, high: int):
    def check(value, _values) -> str | None:
        if type(value) is int and low <= value <= high:
            return None
        return f"must be a whole number from {low} to {high}, got {value!r}"

    return check


def _one_of(allowed: tuple):
    def check(value, _values) -> str | None:
        return None if value in allowed else f"{value!r} is not one of {list(allowed)}"

    return check


def _boolean(value, _values) -> str | None:
    return None if isinstance(value, bool) else f"must be true or false, got {value!r}"


def _email(value, _values) -> str | None:
    if value and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", str(value)):
        return f"{value!r} is not an email address"
    return None


CHECKS = {
    "regions": _regions,
    "primaryRegion": _primary_region,
    "datastoreHomeRegion": _primary_region,
    "linkStore": _one_of(LINK_STORES),
    "linkTableHomeRegion": _primary_region,
    "domain": _matches(_HOSTNAME_RE, "is not a lowercase DNS name like go.example.com"),
    "trafficRouter": _one_of(TRAFFIC_ROUTERS),
    "cloudflareAccountId": _matches(_HEX32_RE, "is not the 32-character hex id Cloudflare shows"),
    "cloudflareZoneId": _matches(_HEX32_RE, "is not the 32-character hex id Cloudflare shows"),
    "route53ZoneId": _matches(
        _HOSTED_ZONE_RE, "is not a hosted zone id like Z0123456789ABCDEFGHIJ"
    ),
    "healthCheckIntervalSeconds": _one_of((10, 30)),
    "healthCheckFailureThreshold": _whole(1, 10),
    "originRecordTtl": _whole(0, 86400),
    "cacheEngine": _one_of(ENGINES),
    "cacheEngineVersion": _matches(r"\d+\.\d+", "is not a version like 8.0"),
    "cacheNodeType": _node_type,
    "cacheReplicasPerRegion": _whole(1, 5),
    "lambdaMemoryMb": _whole(128, 10240),
    "redirectCacheSeconds": _whole(0, 86400),
    "wafRateLimit": _whole(10, 2_000_000_000),
    "wafBlockedClients": _networks,
    "githubRepository": _github_repository,
    "logRetentionDays": _one_of(LOG_RETENTION_DAYS),
    "functionArchive": _matches(r".+\.zip", "is not a .zip path"),
    "secretsExtensionLayerArns": _extension_layers,
    "noncurrentVersionDays": _whole(1, 3650),
    "vpcCidrBase": _matches(r"10\.\d{1,3}\.0\.0/16", "is not a 10.x.0.0/16 block"),
    "alarmEmail": _email,
    "disposable": _boolean,
}


def _chooser(key: str) -> tuple[str, str] | None:
    """(setting, choice) when only that choice reads `key`; None for a key every stack reads."""
    return next(
        (
            (setting, choice)
            for setting, owned in CHOICES.items()
            for choice, keys in owned.items()
            if key in keys
        ),
        None,
    )


def parse(stack: str, raw: dict[str, object], account_ids: object) -> StackConfig:
    """Validate raw config values (missing keys take their defaults)."""
    values = {key: raw.get(key, default) for key, default in DEFAULTS.items()}
    problems = [f"{PROJECT}:{key}: unknown key" for key in sorted(set(raw) - set(DEFAULTS))]
    router, store = values["trafficRouter"], values["linkStore"]
    for key, check in CHECKS.items():
        owner = _chooser(key)
        if owner is not None and values[owner[0]] != owner[1]:
            continue  # a key of another router or store: not read, not checked
        if owner is not None and values[key] in (None, ""):
            problems.append(f"{PROJECT}:{key}: is required when {owner[0]} is {owner[1]}")
        elif values[key] is None:
            problems.append(f"{PROJECT}:{key}: is required")
        elif message := check(values[key], values):
            problems.append(f"{PROJECT}:{key}: {message}")
    if not (
        isinstance(account_ids, list)
        and len(account_ids) == 1
        and re.fullmatch(r"\d{12}", str(account_ids[0]))
    ):
        problems.append("aws:allowedAccountIds: must list exactly this stack's 12-digit account id")
    if problems:
        raise ConfigError(f"stack {stack!r} has invalid configuration:\n  " + "\n  ".join(problems))

    cache = store == "elasticache"
    return StackConfig(
        stack=stack,
        account_id=str(account_ids[0]),
        regions=tuple(values["regions"]),
        primary_region=values["primaryRegion"],
        datastore_home_region=values["datastoreHomeRegion"] if cache else "",
        link_store=store,
        link_table_home_region="" if cache else values["linkTableHomeRegion"],
        domain=values["domain"],
        traffic_router=router,
        cloudflare_account_id=values["cloudflareAccountId"] if router == "cloudflare" else "",
        cloudflare_zone_id=values["cloudflareZoneId"] if router == "cloudflare" else "",
        route53_zone_id=values["route53ZoneId"] if router == "route53" else "",
        health_check_interval_seconds=values["healthCheckIntervalSeconds"],
        health_check_failure_threshold=values["healthCheckFailureThreshold"],
        origin_record_ttl=values["originRecordTtl"],
        cache_engine=values["cacheEngine"] if cache else "",
        cache_engine_version=str(values["cacheEngineVersion"]) if cache else "",
        cache_node_type=values["cacheNodeType"] if cache else "",
        cache_replicas_per_region=values["cacheReplicasPerRegion"] if cache else 0,
        lambda_memory_mb=values["lambdaMemoryMb"],
        redirect_cache_seconds=values["redirectCacheSeconds"],
        waf_rate_limit=values["wafRateLimit"],
        waf_blocked_clients=tuple(values["wafBlockedClients"]),
        github_repository=values["githubRepository"],
        log_retention_days=values["logRetentionDays"],
        function_archive=Path(str(values["functionArchive"])),
        secrets_extension_layer_arns={
            secrets_extension_layer_region(arn): arn for arn in values["secretsExtensionLayerArns"]
        },
        noncurrent_version_days=values["noncurrentVersionDays"],
        vpc_cidr_base=values["vpcCidrBase"],
        alarm_email=str(values["alarmEmail"] or ""),
        disposable=values["disposable"],
    )


def load() -> StackConfig:
    """The running stack's configuration (Pulumi.yaml defaults, Pulumi.<stack>.yaml values)."""
    import pulumi  # noqa: PLC0415 - parse() stays usable without the Pulumi runtime
    from pulumi.runtime import config as runtime_config  # noqa: PLC0415

    # Every key set for this project, so a misspelt key is an error, not a silent default.
    everything = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    prefix = f"{PROJECT}:"
    raw = {k[len(prefix) :]: _typed(v) for k, v in everything.items() if k.startswith(prefix)}
    account_ids = pulumi.Config("aws").get_object("allowedAccountIds")
    return parse(pulumi.get_stack(), raw, account_ids)


def _typed(value: str) -> object:
    """Config values arrive as strings; numbers, booleans and lists are JSON."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return parsed if isinstance(parsed, int | list) else value
