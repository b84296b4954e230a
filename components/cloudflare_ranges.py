"""Cloudflare's published address ranges, kept in the repository as data.

The regional CloudFront hostnames accept only requests that come from these
ranges (and carry the edge secret): see EdgeSecurity. Cloudflare publishes the
lists at https://www.cloudflare.com/ips-v4 and /ips-v6; `python -m
scripts.refresh_cloudflare_ranges` rewrites cloudflare_ranges.json from them,
and a review of that diff is the only way the WAF's view of Cloudflare changes.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).with_name("cloudflare_ranges.json")
SOURCE = "https://www.cloudflare.com"


@dataclass(frozen=True)
class CloudflareRanges:
    ipv4: tuple[str, ...]
    ipv6: tuple[str, ...]

    def to_json(self) -> str:
        document = {
            "source": f"{SOURCE}/ips-v4 and {SOURCE}/ips-v6",
            "ipv4": list(self.ipv4),
            "ipv6": list(self.ipv6),
        }
        return json.dumps(document, indent=2) + "\n"


def _networks(lines: list[str], version: int, where: str) -> tuple[str, ...]:
    networks = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text:
            continue
        try:
            network = ipaddress.ip_network(text)  # strict: no host bits
        except ValueError as bad:
            raise ValueError(f"{where}:{number}: {text!r} is not a network ({bad})") from None
        if network.version != version:
            raise ValueError(f"{where}:{number}: {text} is not an IPv{version} network")
        if network.prefixlen < (8 if version == 4 else 16):
            raise ValueError(f"{where}:{number}: {text} is implausibly wide for Cloudflare")
        networks.append(network)
    if not networks:
        raise ValueError(f"{where}: no IPv{version} networks")
    return tuple(str(n) for n in sorted(set(networks)))


def parse_lists(ipv4_text: str, ipv6_text: str, where: str = "") -> CloudflareRanges:
    """Cloudflare's two plain-text lists (one CIDR a line) -> validated, sorted ranges."""
    return CloudflareRanges(
        ipv4=_networks(ipv4_text.splitlines(), 4, f"{where}ips-v4"),
        ipv6=_networks(ipv6_text.splitlines(), 6, f"{where}ips-v6"),
    )


def load(path: Path = DATA) -> CloudflareRanges:
    """The ranges kept in the repository, validated like a fresh download."""
    document = json.loads(path.read_text())
    return CloudflareRanges(
        ipv4=_networks(document["ipv4"], 4, f"{path.name} ipv4"),
        ipv6=_networks(document["ipv6"], 6, f"{path.name} ipv6"),
    )
