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
