"""`python -m lambda_package [--out dist/functions.zip]`: build the function archives.

The regional functions' archive, and beside it the Lambda@Edge router's (edge-router.zip).
"""

import argparse
import hashlib
import sys
from pathlib import Path

from lambda_package import ArchiveError, build_archive, build_edge_archive, edge_archive_path

parser = argparse.ArgumentParser(prog="python -m lambda_package", description=__doc__)
parser.add_argument("--out", type=Path, default=Path("dist/functions.zip"))
args = parser.parse_args()
try:
    paths = [build_archive(args.out), build_edge_archive(edge_archive_path(args.out))]
except ArchiveError as exc:
    sys.exit(f"error: {exc}")
for path in paths:
    data = path.read_bytes()
    print(f"{path}: {len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()}")
