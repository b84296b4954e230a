"""The program refuses to plan anything the cloud would reject or CI could not publish."""

from __future__ import annotations

import pytest

from components.config import ConfigError
from functions.links import source
from functions.links.source import LinkErrors

from .harness import deploy


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"golinks:regions": ["eu-west-1", "us-west-2", "ap-southeast-1", "us-east-1"]},
            "golinks:regions: 3 regions at most (a Global Datastore has at most 2 secondary",
        ),
        (
            {"golinks:cacheNodeType": "cache.t4g.medium"},
            "golinks:cacheNodeType: 'cache.t4g.medium' is burstable",
        ),
        (
            {"golinks:primaryRegion": "us-east-1"},
            "golinks:primaryRegion: 'us-east-1' must be one of regions",
        ),
        ({"golinks:regions": ["eu-west-1", "sa-east-1"]}, "['sa-east-1'] not supported"),
        ({"golinks:cacheEngine": "memcached"}, "golinks:cacheEngine: 'memcached' is not one of"),
        ({"golinks:linkStore": "memcached"}, "golinks:linkStore: 'memcached' is not one of"),
        ({"golinks:domain": None}, "golinks:domain: is required"),
        ({"golinks:githubRepository": "no-slash"}, "golinks:githubRepository: 'no-slash'"),
        ({"golinks:wafRateLimit": 5}, "golinks:wafRateLimit: must be a whole number from 10"),
        ({"golinks:cacheReplicasPerRegion": 0}, "golinks:cacheReplicasPerRegion"),
        ({"golinks:regoins": ["eu-west-1"]}, "golinks:regoins: unknown key"),
        ({"aws:allowedAccountIds": ["1", "2"]}, "aws:allowedAccountIds"),
    ],
)
def test_bad_configuration_names_the_key_and_what_is_allowed(archive, overrides, message):
    with pytest.raises(ConfigError) as refused:
        deploy("dev", archive, overrides)
    assert message in str(refused.value)


def test_every_problem_is_reported_at_once(archive):
    with pytest.raises(ConfigError) as refused:
        deploy(
            "dev",
            archive,
            {"golinks:cacheNodeType": "cache.t3.micro", "golinks:logRetentionDays": 2},
        )
    assert "cacheNodeType" in str(refused.value) and "logRetentionDays" in str(refused.value)


def test_a_missing_archive_is_named_with_its_remedy(tmp_path):
    with pytest.raises(Exception, match="is missing: run `make package` first"):
        deploy("dev", tmp_path / "nope.zip")


def test_invalid_links_stop_the_program(archive, tmp_path, monkeypatch):
    broken = tmp_path / "links"
    broken.mkdir()
    (broken / "bad.yaml").write_text("Docs: ftp://nope\n")
    read_links = source.load_links
    # The program reads links/ through the link model; here it finds a broken set.
    monkeypatch.setattr(source, "load_links", lambda paths: read_links([broken]))
    with pytest.raises(LinkErrors, match=r"bad\.yaml:1: Docs: slug must be lowercase"):
        deploy("dev", archive)
