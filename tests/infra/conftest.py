"""Deployments of every stack under mocks, built once per test session."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from .harness import Deployment, deploy

STACKS = ("dev", "staging", "prod")


@pytest.fixture(scope="session")
def archive(tmp_path_factory) -> Path:
    """A stand-in function archive: the program only needs its path to exist."""
    path = tmp_path_factory.mktemp("dist") / "functions.zip"
    with zipfile.ZipFile(path, "w") as zipped:
        zipped.writestr("functions/__init__.py", "")
    return path


@pytest.fixture(scope="session")
def deployments(archive) -> dict[str, Deployment]:
    return {stack: deploy(stack, archive) for stack in STACKS}


@pytest.fixture(scope="session")
def promoted(archive) -> Deployment:
    """prod after promoting us-west-2: primaryRegion moves, the datastore's home stays."""
    return deploy("prod", archive, {"golinks:primaryRegion": "us-west-2"})
