"""The function archive: reproducible, small, and the handlers run from it alone."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from lambda_package import (
    EDGE_ROUTER_FILES,
    MAX_BYTES,
    _cached_wheel,
    build_archive,
    build_edge_archive,
    pinned_requirements,
)

from .conftest import http_event

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return build_archive(tmp_path_factory.mktemp("dist") / "functions.zip")


def test_the_same_sources_give_the_same_bytes(archive, tmp_path):
    again = build_archive(tmp_path / "again.zip")
    assert again.read_bytes() == archive.read_bytes()
    stamp = archive.stat().st_mtime_ns
    build_archive(archive)  # unchanged: not even rewritten
    assert archive.stat().st_mtime_ns == stamp


def test_it_is_small_and_holds_what_lambda_needs(archive):
    assert archive.stat().st_size < MAX_BYTES
    names = zipfile.ZipFile(archive).namelist()
    assert names == sorted(names)
    for needed in (
        "functions/redirect.py",
        "functions/health.py",
        "functions/sync.py",
        "functions/links/model.py",
        "redis/__init__.py",
    ):
        assert needed in names
    assert any(n.startswith("hiredis/") and n.endswith("-313-aarch64-linux-gnu.so") for n in names)
    assert not [
        n for n in names if "__pycache__" in n or n.startswith(("boto3/", "yaml/", "tests/"))
    ]
    infos = zipfile.ZipFile(archive).infolist()
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}


def test_the_handlers_run_from_the_archive_alone(tmp_path, published):
    """The same build for this machine, unpacked and imported with no site-packages."""
    _, replica, bucket, index = published
    host = build_archive(
        tmp_path / "host.zip",
        platform=f"manylinux2014_{platform.machine()}",
        python_version=f"{sys.version_info.major}.{sys.version_info.minor}",
    )
    task = tmp_path / "task"
    zipfile.ZipFile(host).extractall(task)
    probe = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(task)!r})\n"
        "from functions import redirect, health\n"
        f"event = json.loads({json.dumps(json.dumps(http_event('/docs')))})\n"
        "answers = [redirect.handler(event, None)['statusCode'],\n"
        "           json.loads(health.handler(event, None)['body'])['version']]\n"
        "sys.path.append(%r)  # boto3, as the Lambda runtime provides it\n"
        "from functions import sync\n"
        "sync.writer()  # imports redis-py: the archive's copy\n"
        "answers.append(sys.modules['redis'].__file__.startswith(%r))\n"
        "print(json.dumps(answers))\n"
    ) % (sysconfig.get_paths()["purelib"], str(task))
    env = {"PATH": os.environ["PATH"], "REDIS_URL": replica.url, "LINK_INDEX_BUCKET": bucket}
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [302, index.version, True]


def test_a_cached_wheel_is_used_only_when_its_hash_is_pinned(tmp_path):
    pins = pinned_requirements()
    assert pins and all(pins.values()), "every runtime dependency is pinned with hashes"
    pin, hashes = next(iter(pins.items()))
    name, version = pin.split("==")
    wheel = tmp_path / f"{name}-{version}-cp313-cp313-manylinux2014_aarch64.whl"
    wheel.write_bytes(b"a wheel someone swapped in")
    assert _cached_wheel(tmp_path, pin, hashes) is None  # downloaded again, by hash
    swapped = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert _cached_wheel(tmp_path, pin, {swapped}) == wheel


def test_the_edge_router_archive_is_reproducible_and_runs_alone(tmp_path):
    """Stdlib only: unpacked and imported with no site-packages, it routes a real event."""
    first = build_edge_archive(tmp_path / "a" / "edge-router.zip").read_bytes()
    second = build_edge_archive(tmp_path / "b" / "edge-router.zip").read_bytes()
    assert first == second
    with zipfile.ZipFile(tmp_path / "a" / "edge-router.zip") as archive:
        assert sorted(archive.namelist()) == sorted(EDGE_ROUTER_FILES)
        archive.extractall(tmp_path / "unpacked")
    event = Path(__file__).resolve().parents[1] / "events" / "cloudfront-origin-request.json"
    script = (
        "import json, sys\n"
        "from functions.edge_router import handler\n"
        f"event = json.load(open({str(event)!r}))\n"
        "resolve = lambda name: ('us-west-2.' + name, [], [])\n"
        "print(handler(event, None, resolve=resolve)['origin']['custom']['domainName'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", script],
        cwd=tmp_path / "unpacked",
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "us-west-2.origin.go.example.com"
