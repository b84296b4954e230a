"""Fixtures shared by every test suite: real redis-server processes and a moto S3.

Tests never skip for a missing server: without redis-server the fixtures fail
with the command that installs it, and in CI any skipped test fails the run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest

from local.servers import MotoS3Server, MotoServer, RedisServer
from local.topology import REGIONS

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def redis_factory(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Start real redis-servers (`replica_of=`, `password=`, `tls=`); all stop afterwards."""
    started: list[RedisServer] = []

    def start(name: str = "redis", **options) -> RedisServer:
        server = RedisServer(tmp_path / f"{name}-{len(started)}", name=name, **options)
        started.append(server)
        return server.start()

    yield start
    for server in reversed(started):
        server.stop()


@pytest.fixture
def redis_primary(redis_factory) -> RedisServer:
    return redis_factory("primary")


@pytest.fixture
def redis_replicated(redis_factory) -> tuple[RedisServer, RedisServer]:
    """A primary and one real replica of it."""
    primary = redis_factory("primary")
    return primary, redis_factory("replica", replica_of=primary)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[MotoS3Server]:
    """One moto S3 server for the session; boto3 in this process points at it."""
    server = MotoS3Server(tmp_path_factory.mktemp("moto")).start()
    saved = {key: os.environ.get(key) for key in server.env()}
    os.environ.update(server.env())
    yield server
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def s3_bucket(s3_server) -> str:
    """A fresh, versioned bucket on the local S3."""
    name = f"links-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3")
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


@pytest.fixture(scope="session")
def dynamodb_regions(tmp_path_factory) -> Iterator[dict[str, MotoServer]]:
    """One local DynamoDB (moto server) per simulated region, the primary first."""
    servers: dict[str, MotoServer] = {}
    try:
        for region in REGIONS:  # started together: each takes seconds to import moto
            workdir = tmp_path_factory.mktemp(f"dynamodb-{region}")
            servers[region] = MotoServer(workdir, name=f"dynamodb-{region}")
            servers[region].launch()
        for server in servers.values():
            server.wait_accepting(server.port, 60)
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def pytest_sessionfinish(session, exitstatus) -> None:
    """In CI a skipped test is a failure: it would hide a missing dependency."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("CI") and skipped and exitstatus == 0:
        reporter.write_line(f"CI: {skipped} test(s) skipped; failing the run", red=True)
        session.exitstatus = 1
