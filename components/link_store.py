"""How one region's functions reach the link store: the part of RegionalApi that differs per store.

- `CacheAccess` (linkStore elasticache): the region's Global Datastore member.
  Redis is reachable only inside the VPC, so every function runs there; its
  AUTH token is in the service secret, so no IAM grants the store.
- `TableAccess` (linkStore dynamodb): the link table's replica in the region.
  Redirect and health stay in the VPC (a gateway endpoint reaches DynamoDB);
  the sync runs outside it, since it reads back every region's replica and the
  VPC has no route out. IAM is the whole access: each function attaches the
  document it is given.

Both give the functions' environment in the names the handlers read
(`LINK_STORE`, then `REDIS_URL`, or `LINK_TABLE` and, for the sync,
`LINK_TABLE_REGIONS`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import pulumi

from components.planning import CACHE_PORT


def redis_url(endpoint: pulumi.Input[str]) -> pulumi.Output[str]:
    """TLS to an ElastiCache endpoint (in-transit encryption is required on the members)."""
    return pulumi.Output.concat("rediss://", endpoint, f":{CACHE_PORT}/0")


@dataclass
class CacheAccess:
    """linkStore elasticache: this region's Global Datastore member."""

    reader_endpoint: pulumi.Input[str]
    """The member's reader endpoint (redirect and health read here)."""
    node_ids: list[str]
    """The member's nodes (CacheClusterId): replication lag is published per node."""
    writer_endpoint: pulumi.Input[str] | None = None
    """The primary member's writer endpoint: given in the primary region only (its sync
    writes there). Default None: this region only reads."""

    kind: ClassVar[str] = "elasticache"
    sync_in_vpc: ClassVar[bool] = True
    reader_policy: ClassVar[None] = None
    writer_policy: ClassVar[None] = None

    @property
    def writes(self) -> bool:
        return self.writer_endpoint is not None

    def reader_env(self) -> dict[str, pulumi.Input[str]]:
        return {"LINK_STORE": self.kind, "REDIS_URL": redis_url(self.reader_endpoint)}

    def writer_env(self) -> dict[str, pulumi.Input[str]]:
        assert self.writer_endpoint is not None, "only the primary region's sync writes"
        return {"LINK_STORE": self.kind, "REDIS_URL": redis_url(self.writer_endpoint)}


@dataclass
class TableAccess:
    """linkStore dynamodb: the link table's replica in this region."""

    table_name: pulumi.Input[str]
    reader_policy: str
    """IAM document of redirect and health: GetItem on this region's replica
    (LinkTable.reader_policy)."""
    writer_policy: str | None = None
    """IAM document of the sync (LinkTable.writer_policy): given in the primary region
    only. Default None: this region only reads."""
    regions: list[str] = field(default_factory=list)
    """Every region of the stack, the primary first: where the sync reads back and flips."""

    kind: ClassVar[str] = "dynamodb"
    sync_in_vpc: ClassVar[bool] = False

    @property
    def writes(self) -> bool:
        return self.writer_policy is not None

    def reader_env(self) -> dict[str, pulumi.Input[str]]:
        return {"LINK_STORE": self.kind, "LINK_TABLE": self.table_name}

    def writer_env(self) -> dict[str, pulumi.Input[str]]:
        assert self.writer_policy is not None, "only the primary region's sync writes"
        return {**self.reader_env(), "LINK_TABLE_REGIONS": ",".join(self.regions)}


LinkStoreAccess = CacheAccess | TableAccess
