"""The function archive's size against Lambda-friendly limits (target: under 1.5 MB)."""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

from lambda_package import MAX_BYTES, build_archive

from .report import table
from .summary import at_most, record


def run() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-archive-") as tmp:
        archive = build_archive(Path(tmp) / "functions.zip")
        size = archive.stat().st_size
        infos = zipfile.ZipFile(archive).infolist()
    by_top: dict[str, int] = {}
    for info in infos:
        top = info.filename.split("/")[0]
        by_top[top] = by_top.get(top, 0) + info.compress_size
    rows = [
        [name, f"{by_top[name] / 1000:.0f}"]
        for name in sorted(by_top, key=by_top.get, reverse=True)
    ]
    rows.append(["total (zip)", f"{size / 1000:.0f}"])
    print(
        f"Function archive: {size:,} bytes = {size / MAX_BYTES:.2f} of the 1.5 MB target "
        f"({'ok' if size <= MAX_BYTES else 'MISSED'})"
    )
    print(table(["part", "kB compressed"], rows))
    ratio, target, ok = at_most(size / MAX_BYTES, 1.0)
    for store in ("redis", "dynamodb"):  # one archive holds both stores' code
        record(
            "function archive (one for both stores)",
            store,
            f"{size / 1000:.0f} kB vs the 1.5 MB limit",
            ratio,
            target=target,
            ok=ok,
        )
