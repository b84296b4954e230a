"""The simulated world of the local stack: regions and the round trips between them.

Round trips are the published inter-region p50s (cloudping.co, AWS inter-region
latency, p50 over one year): eu-west-1/us-west-2 118 ms, eu-west-1/ap-southeast-1
182 ms, us-west-2/ap-southeast-1 160 ms; a client inside a region sees 1-3 ms
(2 ms here). `scale` shrinks every delay so tests run fast.
"""

from __future__ import annotations

from dataclasses import dataclass

REGIONS = ("eu-west-1", "us-west-2", "ap-southeast-1")
INTRA_REGION_RTT_MS = 2.0
INTER_REGION_RTT_MS = {
    frozenset({"eu-west-1", "us-west-2"}): 118.0,
    frozenset({"eu-west-1", "ap-southeast-1"}): 182.0,
    frozenset({"us-west-2", "ap-southeast-1"}): 160.0,
}


@dataclass(frozen=True)
class Topology:
    """Regions (the first is the primary) and the delays between them, scaled."""

    regions: tuple[str, ...] = REGIONS
    scale: float = 1.0

    def __post_init__(self) -> None:
        unknown = [r for r in self.regions if r not in REGIONS]
        if unknown or not self.regions or len(set(self.regions)) != len(self.regions):
            raise ValueError(f"regions must be distinct, from {', '.join(REGIONS)}")
        if not 0 < self.scale <= 1:
            raise ValueError("scale must be in (0, 1]")

    @property
    def primary(self) -> str:
        return self.regions[0]

    def rtt_ms(self, a: str, b: str) -> float:
        """Simulated round trip between two regions (or inside one), in ms."""
        unscaled = INTRA_REGION_RTT_MS if a == b else INTER_REGION_RTT_MS[frozenset({a, b})]
        return unscaled * self.scale

    def one_way_s(self, a: str, b: str) -> float:
        return self.rtt_ms(a, b) / 2000

    def by_latency(self, client_region: str) -> list[str]:
        """Regions in the order a latency-steered client should try them."""
        return sorted(self.regions, key=lambda region: (self.rtt_ms(client_region, region), region))
