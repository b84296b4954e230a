"""`python -m lambda_package [--out dist/functions.zip]`: build the function archive."""

import argparse
import hashlib
import sys
from pathlib import Path

from lambda_package import ArchiveError, build_archive

parser = argparse.ArgumentParser(prog="python -m lambda_package", description=__doc__)
parser.add_argument("--out", type=Path, default=Path("dist/functions.zip"))
args = parser.parse_args()
try:
    path = build_archive(args.out)
except ArchiveError as exc:
    sys.exit(f"error: {exc}")
data = path.read_bytes()
print(f"{path}: {len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()}")
