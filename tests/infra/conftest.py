"""Deployments of every stack under mocks, built once per test session."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from lambda_package import edge_archive_path

from .harness import Deployment, deploy

STACKS = ("dev", "staging", "prod")
#: The all-AWS traffic path: the stack files stay on Cloudflare; these overrides switch.
ROUTE53_ZONE_ID = "Z0123456789ABCDEFGHIJ"
ROUTE53 = {
    "golinks:trafficRouter": "route53",
    "golinks:route53ZoneId": ROUTE53_ZONE_ID,
    "golinks:cloudflareAccountId": None,
    "golinks:cloudflareZoneId": None,
}

#: The DynamoDB link store: the stack files stay on ElastiCache; this override switches.
DYNAMODB = {"golinks:linkStore": "dynamodb"}


@pytest.fixture(scope="session")
def archive(tmp_path_factory) -> Path:
    """A stand-in function archive: the program only needs its path to exist."""
    path = tmp_path_factory.mktemp("dist") / "functions.zip"
    for archive_path in (path, edge_archive_path(path)):
        with zipfile.ZipFile(archive_path, "w") as zipped:
            zipped.writestr("functions/__init__.py", "")
    return path


@pytest.fixture(scope="session")
def deployments(archive) -> dict[str, Deployment]:
    return {stack: deploy(stack, archive) for stack in STACKS}


@pytest.fixture(scope="session")
def route53_deployments(archive) -> dict[str, Deployment]:
    """Every stack with trafficRouter route53."""
    return {stack: deploy(stack, archive, ROUTE53) for stack in STACKS}


@pytest.fixture(scope="session")
def dynamodb_deployments(archive) -> dict[str, Deployment]:
    """Every stack with linkStore dynamodb."""
    return {stack: deploy(stack, archive, DYNAMODB) for stack in STACKS}


@pytest.fixture(scope="session")
def promoted(archive) -> Deployment:
    """prod after promoting us-west-2: primaryRegion moves, the datastore's home stays."""
    return deploy("prod", archive, {"golinks:primaryRegion": "us-west-2"})
