"""The function archive: `functions/` plus its pinned runtime dependencies, for Lambda.

One archive serves every function (redirect, health, sync). It is built
reproducibly: the same sources and pins give the same bytes (sorted entries,
fixed timestamps and permissions, no caches), so `pulumi preview` shows no
change unless something really changed. Dependencies come from
`functions/requirements.txt` (pinned with hashes, downloaded with
`--require-hashes`) as wheels for the Lambda platform (arm64, CPython 3.13),
cached under `.cache/lambda-wheels/` (a cached wheel is used only if its hash is
pinned) so repeat builds are offline. boto3 is not packaged: the Lambda runtime
provides it.
"""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REQUIREMENTS = REPO / "functions" / "requirements.txt"
WHEEL_CACHE = REPO / ".cache" / "lambda-wheels"
LAMBDA_PLATFORM = "manylinux2014_aarch64"
LAMBDA_PYTHON = "3.13"
#: The Lambda runtime the archive is built for: its wheels carry this CPython ABI.
LAMBDA_RUNTIME = f"python{LAMBDA_PYTHON}"
MAX_BYTES = 1_500_000
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
#: Not needed in the functions' containers: the YAML reader and CLI run in CI only.
EXCLUDED = ("functions/requirements.in", "functions/requirements.txt")


#: The Lambda@Edge router's archive: stdlib-only modules, so one build runs on x86_64
#: (Lambda@Edge has no arm64) whatever the regional functions' wheels are.
EDGE_ROUTER_FILES = (
    "functions/__init__.py",
    "functions/edge_router.py",
    "functions/origin.py",
)
EDGE_ROUTER_HANDLER = "functions.edge_router.handler"


class ArchiveError(RuntimeError):
    pass


def pinned_requirements() -> dict[str, set[str]]:
    """`name==version` of every pin -> the sha256 hashes the file allows for it."""
    pins = re.findall(
        r"^([A-Za-z0-9_.-]+==[^\s\\]+)((?:\s*\\\n\s*--hash=sha256:[0-9a-f]{64})*)",
        REQUIREMENTS.read_text(),
        re.M,
    )
    return {pin: set(re.findall(r"[0-9a-f]{64}", hashes)) for pin, hashes in pins}


def wheels(platform: str = LAMBDA_PLATFORM, python_version: str = LAMBDA_PYTHON) -> list[Path]:
    """The pinned wheels for the target platform, downloaded once into the cache."""
    cache = WHEEL_CACHE / f"{platform}-cp{python_version.replace('.', '')}"
    pins = pinned_requirements()
    found = [_cached_wheel(cache, pin, hashes) for pin, hashes in pins.items()]
    if None in found:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--platform",
            platform,
            "--python-version",
            python_version,
            "--dest",
            str(cache),
            "--require-hashes",  # every wheel must match a hash pinned in the file
            "-r",
            str(REQUIREMENTS),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ArchiveError(f"cannot download the function's wheels:\n{result.stderr}")
        found = [_cached_wheel(cache, pin, hashes) for pin, hashes in pins.items()]
    if None in found:
        raise ArchiveError(
            f"no pinned wheel for {list(pins)} on {platform} / Python {python_version}"
        )
    return found


def _cached_wheel(cache: Path, pin: str, hashes: set[str]) -> Path | None:
    """The cached wheel of `pin` whose sha256 is one the file pins (else: download again)."""
    name, _, version = pin.partition("==")
    for wheel in sorted(cache.glob(f"{name.replace('-', '_')}-{version}-*.whl")):
        if hashlib.sha256(wheel.read_bytes()).hexdigest() in hashes:
            return wheel
    return None


def build_archive(
    out: Path, *, platform: str = LAMBDA_PLATFORM, python_version: str = LAMBDA_PYTHON
) -> Path:
    """Write the archive to `out` (only if its bytes changed) and return `out`."""
    entries: dict[str, bytes] = {}
    for source in sorted((REPO / "functions").rglob("*")):
        relative = source.relative_to(REPO).as_posix()
        if source.is_file() and "__pycache__" not in relative and relative not in EXCLUDED:
            entries[relative] = source.read_bytes()
    for wheel in wheels(platform, python_version):
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                if not name.endswith("/") and "__pycache__" not in name:
                    entries[name] = archive.read(name)
    data = _deterministic_zip(entries)
    if len(data) > MAX_BYTES:
        raise ArchiveError(f"the archive is {len(data):,} bytes; the limit is {MAX_BYTES:,}")
    return _write_if_changed(out, data)


def build_edge_archive(out: Path) -> Path:
    """Write the Lambda@Edge router's archive to `out`, reproducibly, and return `out`."""
    data = _deterministic_zip({name: (REPO / name).read_bytes() for name in EDGE_ROUTER_FILES})
    return _write_if_changed(out, data)


def edge_archive_path(function_archive: Path) -> Path:
    """The router's archive is built next to the function archive."""
    return function_archive.with_name("edge-router.zip")


def _write_if_changed(out: Path, data: bytes) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists() or out.read_bytes() != data:
        out.write_bytes(data)
    return out


def _deterministic_zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            executable = name.endswith(".so")
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, whatever machine builds it
            archive.writestr(info, entries[name], compresslevel=9)
    return buffer.getvalue()
