"""Stack configuration: declared once in Pulumi.yaml, parsed and validated without Pulumi."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components.config import CHECKS, DEFAULTS, ConfigError, parse

REPO = Path(__file__).resolve().parents[2]
REQUIRED = {
    "domain": "go.example.com",
    "cloudflareAccountId": "a" * 32,
    "cloudflareZoneId": "b" * 32,
    "githubRepository": "example/golinks",
}


def test_every_declared_key_is_validated():
    assert set(CHECKS) == set(DEFAULTS)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_stack_files_are_valid(stack):
    values = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())["config"]
    raw = {k.split(":", 1)[1]: v for k, v in values.items() if k.startswith("golinks:")}
    config = parse(stack, raw, values["aws:allowedAccountIds"])
    assert config.primary_region == "eu-west-1"
    assert config.link_store == "elasticache"  # variants are tests' overrides
    if stack != "dev":
        assert config.regions == ("eu-west-1", "us-west-2", "ap-southeast-1")
    # Only dev may be torn down and re-created; the others keep their data protected.
    assert config.disposable is (stack == "dev")


def test_the_stacks_use_separate_accounts_and_address_blocks():
    stacks = [
        yaml.safe_load((REPO / f"Pulumi.{s}.yaml").read_text())["config"]
        for s in ("dev", "staging", "prod")
    ]
    assert len({tuple(s["aws:allowedAccountIds"]) for s in stacks}) == 3
    assert len({s.get("golinks:vpcCidrBase", DEFAULTS["vpcCidrBase"]) for s in stacks}) == 3


STACKS = ("dev", "staging", "prod")


@pytest.mark.parametrize("stack", STACKS)
def test_every_region_of_every_stack_has_its_own_extension_layer(stack):
    values = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())["config"]
    raw = {k.split(":", 1)[1]: v for k, v in values.items() if k.startswith("golinks:")}
    config = parse(stack, raw, values["aws:allowedAccountIds"])
    for region in config.regions:
        arn = config.secrets_extension_layer_arns[region]
        assert arn.startswith(f"arn:aws:lambda:{region}:"), arn
        assert ":layer:AWS-Parameters-and-Secrets-Lambda-Extension-Arm64:" in arn


def test_a_region_without_an_extension_layer_is_refused():
    only_two = [arn for arn in DEFAULTS["secretsExtensionLayerArns"] if "ap-southeast-1" not in arn]
    with pytest.raises(ConfigError) as refused:
        parse("prod", {**REQUIRED, "secretsExtensionLayerArns": only_two}, ["111111111111"])
    assert "golinks:secretsExtensionLayerArns: has no layer ARN for ['ap-southeast-1']" in str(
        refused.value
    )
    # A stack that serves two regions needs only those two.
    two = parse(
        "dev",
        {**REQUIRED, "regions": ["eu-west-1", "us-west-2"], "secretsExtensionLayerArns": only_two},
        ["111111111111"],
    )
    assert set(two.secrets_extension_layer_arns) == {"eu-west-1", "us-west-2"}


def test_defaults_make_a_three_region_datastore():
    config = parse("prod", REQUIRED, ["111111111111"])
    assert config.secondary_regions == ("us-west-2", "ap-southeast-1")
    assert (config.cache_engine, config.cache_node_type) == ("valkey", "cache.r7g.large")
    assert config.disposable is False  # a stack is protected unless it says otherwise


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"regions": "eu-west-1"}, "golinks:regions: must be a list"),
        ({"regions": ["eu-west-1", "eu-west-1"]}, "must not repeat a region"),
        (
            {"regions": ["eu-west-1", "us-west-2", "ap-southeast-1", "eu-central-1"]},
            "3 regions at most",
        ),
        (
            {"primaryRegion": "us-west-1"},
            "golinks:primaryRegion: 'us-west-1' must be one of regions",
        ),
        ({"cacheNodeType": "cache.t4g.micro"}, "is burstable"),
        ({"cacheNodeType": "r7g.large"}, "is not a node type like cache.r7g.large"),
        ({"lambdaMemoryMb": "512"}, "golinks:lambdaMemoryMb: must be a whole number"),
        ({"logRetentionDays": 10}, "golinks:logRetentionDays: 10 is not one of"),
        ({"cloudflareZoneId": "zone"}, "golinks:cloudflareZoneId: 'zone' is not the 32-character"),
        ({"alarmEmail": "oncall"}, "golinks:alarmEmail: 'oncall' is not an email address"),
        ({"vpcCidrBase": "192.168.0.0/16"}, "golinks:vpcCidrBase"),
        ({"functionArchive": "dist/functions.tar"}, "golinks:functionArchive"),
        ({"extra": 1}, "golinks:extra: unknown key"),
        ({"disposable": "yes"}, "golinks:disposable: must be true or false, got 'yes'"),
        (
            {"secretsExtensionLayerArns": DEFAULTS["secretsExtensionLayerArns"] * 2},
            "must not give two ARNs for one region",
        ),
        (
            {"secretsExtensionLayerArns": ["arn:aws:lambda:eu-west-1:1:layer:x:1"]},
            "is not an ARN of the AWS-Parameters-and-Secrets-Lambda-Extension-Arm64 layer",
        ),
        ({"wafBlockedClients": ["203.0.113.7/24"]}, "golinks:wafBlockedClients: '203.0.113.7/24'"),
        ({"wafBlockedClients": "203.0.113.0/24"}, "golinks:wafBlockedClients: must be a list"),
        ({"noncurrentVersionDays": 0}, "golinks:noncurrentVersionDays: must be a whole number"),
    ],
)
def test_each_bad_value_is_named(raw, message):
    with pytest.raises(ConfigError) as refused:
        parse("dev", {**REQUIRED, **raw}, ["111111111111"])
    assert message in str(refused.value)


def test_missing_required_keys_and_account_are_all_reported():
    with pytest.raises(ConfigError) as refused:
        parse("dev", {}, None)
    text = str(refused.value)
    for key in (*REQUIRED, "aws:allowedAccountIds"):
        assert key in text


@pytest.mark.parametrize(
    "repository",
    ["example/golinks", "example@1234/golinks@5678", "Ex-ample/go.links_2", "o@9/r@1"],
)
def test_both_oidc_subject_forms_of_a_repository_are_accepted(repository):
    config = parse("prod", {**REQUIRED, "githubRepository": repository}, ["111111111111"])
    assert config.github_repository == repository


@pytest.mark.parametrize(
    ("repository", "message"),
    [
        ("golinks", "is neither owner/repository nor the immutable form"),
        ("example/golinks:environment:prod", "is neither owner/repository"),
        ("repo:example/golinks", "is neither owner/repository"),
        ("example@/golinks@", "is neither owner/repository"),
        ("example@12a/golinks@34", "is neither owner/repository"),
        ("-example/golinks", "is neither owner/repository"),
        ("example@1234/golinks", "has a numeric id on one side only"),
        ("example/golinks@5678", "has a numeric id on one side only"),
    ],
)
def test_a_repository_in_neither_form_is_refused_with_the_forms_named(repository, message):
    with pytest.raises(ConfigError) as refused:
        parse("prod", {**REQUIRED, "githubRepository": repository}, ["111111111111"])
    assert f"golinks:githubRepository: {repository!r} {message}" in str(refused.value)
    assert "owner@OWNER_ID/repository@REPOSITORY_ID" in str(refused.value)


ROUTE53 = {
    "domain": "go.example.com",
    "githubRepository": "example/golinks",
    "trafficRouter": "route53",
    "route53ZoneId": "Z0123456789ABCDEFGHIJ",
}


def test_cloudflare_is_the_default_router():
    config = parse("prod", REQUIRED, ["111111111111"])
    assert (config.traffic_router, config.route53_zone_id) == ("cloudflare", "")
    assert config.cloudflare_zone_id == "b" * 32


def test_a_route53_stack_needs_no_cloudflare_key():
    config = parse("prod", ROUTE53, ["111111111111"])
    assert (config.traffic_router, config.route53_zone_id) == ("route53", "Z0123456789ABCDEFGHIJ")
    assert (config.cloudflare_account_id, config.cloudflare_zone_id) == ("", "")
    assert (config.health_check_interval_seconds, config.health_check_failure_threshold) == (30, 3)
    assert config.origin_record_ttl == 60


@pytest.mark.parametrize(
    ("raw", "messages"),
    [
        (
            {**ROUTE53, "route53ZoneId": ""},
            ["golinks:route53ZoneId: is required when trafficRouter is route53"],
        ),
        (
            {k: v for k, v in REQUIRED.items() if k != "cloudflareZoneId"},
            ["golinks:cloudflareZoneId: is required when trafficRouter is cloudflare"],
        ),
        (
            {"domain": "go.example.com", "githubRepository": "example/golinks"},
            [
                "golinks:cloudflareAccountId: is required when trafficRouter is cloudflare",
                "golinks:cloudflareZoneId: is required when trafficRouter is cloudflare",
            ],
        ),
        ({**ROUTE53, "route53ZoneId": "zone-1"}, ["golinks:route53ZoneId: 'zone-1' is not"]),
        ({**ROUTE53, "trafficRouter": "akamai"}, ["golinks:trafficRouter: 'akamai' is not one"]),
        ({**ROUTE53, "healthCheckIntervalSeconds": 20}, ["healthCheckIntervalSeconds: 20 is"]),
        ({**ROUTE53, "healthCheckFailureThreshold": 0}, ["healthCheckFailureThreshold: must be"]),
    ],
)
def test_router_keys_are_required_only_for_their_router(raw, messages):
    with pytest.raises(ConfigError) as error:
        parse("prod", raw, ["111111111111"])
    for message in messages:
        assert message in str(error.value)
    if raw.get("trafficRouter") == "route53":
        assert "cloudflare" not in str(error.value).lower()


def test_elasticache_is_the_default_store():
    config = parse("prod", REQUIRED, ["111111111111"])
    assert (config.link_store, config.link_table_home_region) == ("elasticache", "")
    assert config.datastore_home_region == "eu-west-1"


def test_a_dynamodb_stack_reads_no_cache_key():
    # Cache keys a DynamoDB stack would refuse if it read them: it does not.
    raw = {
        **REQUIRED,
        "linkStore": "dynamodb",
        "cacheNodeType": "cache.t4g.micro",
        "cacheReplicasPerRegion": 0,
        "datastoreHomeRegion": "mars-1",
    }
    config = parse("prod", raw, ["111111111111"])
    assert (config.link_store, config.link_table_home_region) == ("dynamodb", "eu-west-1")
    assert (config.cache_node_type, config.cache_replicas_per_region) == ("", 0)
    assert config.datastore_home_region == ""


@pytest.mark.parametrize(
    ("raw", "messages"),
    [
        ({"linkStore": "redis"}, ["golinks:linkStore: 'redis' is not one of"]),
        (
            {"linkStore": "dynamodb", "linkTableHomeRegion": "us-east-1"},
            ["golinks:linkTableHomeRegion: 'us-east-1' must be one of regions"],
        ),
        (
            {"linkStore": "dynamodb", "linkTableHomeRegion": ""},
            ["golinks:linkTableHomeRegion: is required when linkStore is dynamodb"],
        ),
        (
            {"linkStore": "elasticache", "datastoreHomeRegion": ""},
            ["golinks:datastoreHomeRegion: is required when linkStore is elasticache"],
        ),
    ],
)
def test_store_keys_are_checked_only_for_their_store(raw, messages):
    with pytest.raises(ConfigError) as error:
        parse("prod", {**REQUIRED, **raw}, ["111111111111"])
    for message in messages:
        assert message in str(error.value)
    if raw.get("linkStore") == "dynamodb":
        assert "datastoreHomeRegion" not in str(error.value)


def test_an_elasticache_stack_ignores_the_table_home():
    config = parse("prod", {**REQUIRED, "linkTableHomeRegion": "mars-1"}, ["111111111111"])
    assert config.link_table_home_region == ""
