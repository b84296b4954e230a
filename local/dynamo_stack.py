"""The DynamoDB link store of the local stack: a global table on one moto server per region.

- Each region's replica of the table lives on its own moto server; the region's
  functions (and the sync's read-backs) reach it through a proxy with the
  in-region delay, which `down()` cuts and `up()` restores (the table keeps its
  items, as a replica that becomes unreachable does).
- TableReplication copies every change of the writing replica to each other
  region after the topology's one-way delay plus jitter, items in any order.
  A region that is down receives nothing until it is back.
- `promote()` moves the writer: the new primary's table gets its stream and
  replicates outward from then on (what the old writer had sent keeps arriving).
"""

from __future__ import annotations

from pathlib import Path

from functions.dynamo_store import POINTER_REFRESH_S, DynamoLinks
from functions.lean_dynamo import LeanDynamo
from functions.links.dynamo_sync import FLIP_TIMEOUT_S, SETTLE_S
from functions.store import StoreUnavailable
from local.delay_proxy import DelayProxy
from local.dynamo_replication import TableReplication, create_link_table
from local.servers import LOOPBACK, ChildRecord, MotoServer, local_dynamodb_client
from local.topology import Topology

TABLE = "golinks-local-links"
STREAM = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
#: Changes to one region arrive up to this share of its one-way delay late, so they overtake
#: one another.
JITTER_SHARE = 0.5
#: How often an idle writer's stream is read (each read costs a request of the local
#: DynamoDB and CPU of this process); a change is picked up at most this late.
STREAM_POLL_S = 0.05
#: A local DynamoDB is far slower than DynamoDB: reading a few thousand items back takes
#: seconds, whatever the simulated delays; the sync waits at least this long for a region.
MIN_FLIP_TIMEOUT_S = 6.0
LOCAL_CREDENTIALS = ("local", "local", None)


class LocalDynamoDB:
    """The link table's replicas, their endpoints and the replication between them.

    `run` runs a coroutine on the stack's event loop (the proxies live there);
    `record` notes the moto servers' PIDs so a later run can stop leftovers.
    """

    def __init__(self, state_dir: Path, topology: Topology, run, record: ChildRecord | None = None):
        self.state_dir = state_dir
        self.topology = topology
        self.run = run
        self.record = record
        self.table = TABLE
        self.primary_region = topology.primary
        self.servers: dict[str, MotoServer] = {}
        self.proxies: dict[str, DelayProxy] = {}
        self.replications: list[TableReplication] = []
        """From every replica that was the writer, the current one last."""
        self.down_regions: set[str] = set()

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> LocalDynamoDB:
        for region in self.topology.regions:  # launched together: each takes a while to import
            server = MotoServer(self.state_dir / f"dynamodb-{region}", name=f"dynamodb-{region}")
            server.record = self.record
            server.launch()
            self.servers[region] = server
        for region, server in self.servers.items():
            server.wait_accepting(server.port, 60)
            in_region = self.topology.one_way_s(region, region)
            self.proxies[region] = self.run(DelayProxy(server.port, in_region).start())
            create_link_table(self.client(region), TABLE, stream=region == self.primary_region)
        self.replications.append(self._replicate_from(self.primary_region).start())
        return self

    @property
    def replication(self) -> TableReplication:
        """The replication from the current writer."""
        return self.replications[-1]

    def stop(self) -> None:
        for replication in self.replications:
            replication.stop()
        for proxy in self.proxies.values():
            self.run(proxy.stop())
        for server in self.servers.values():
            server.stop()

    def processes(self) -> list[MotoServer]:
        return list(self.servers.values())

    # -- what the functions see ----------------------------------------------------

    def endpoint(self, region: str) -> str:
        """Where `region`'s functions reach its replica (through the in-region link)."""
        return f"http://{LOOPBACK}:{self.proxies[region].port}"

    def function_env(self, region: str) -> dict[str, str]:
        """The redirect and health functions' settings, as the program sets them, scaled."""
        return {
            "LINK_STORE": "dynamodb",
            "LINK_TABLE": TABLE,
            "AWS_ENDPOINT_URL_DYNAMODB": self.endpoint(region),
            "LINK_POINTER_REFRESH_S": self._scaled(POINTER_REFRESH_S),
        }

    def sync_env(self) -> dict[str, str]:
        """The sync function's settings in the primary region: every replica, the primary first."""
        regions = [self.primary_region] + [
            r for r in self.topology.regions if r != self.primary_region
        ]
        return {
            **self.function_env(self.primary_region),
            "LINK_TABLE_REGIONS": ",".join(regions),
            "LINK_TABLE_ENDPOINTS": ",".join(f"{r}={self.endpoint(r)}" for r in regions),
            "LINK_SYNC_SETTLE_S": self._scaled(SETTLE_S),
            "LINK_SYNC_FLIP_TIMEOUT_S": f"{self.flip_timeout_s:g}",
            # As in AWS (the function's timeout), a run ends before its lease: at most a
            # flip and a prune, each bounded by the flip timeout, plus its writes.
            "LINK_SYNC_LEASE_S": f"{2.5 * self.flip_timeout_s:g}",
        }

    @property
    def flip_timeout_s(self) -> float:
        return max(FLIP_TIMEOUT_S * self.topology.scale, MIN_FLIP_TIMEOUT_S)

    def _scaled(self, seconds: float) -> str:
        return f"{seconds * self.topology.scale:g}"

    def client(self, region: str):
        """A boto3 client on `region`'s replica itself (not through its endpoint's link)."""
        return local_dynamodb_client(self.servers[region].endpoint, region)

    def reader(self, region: str, **options) -> DynamoLinks:
        """What `region`'s redirect function reads through (options: DynamoLinks')."""
        client = LeanDynamo(
            region,
            endpoint=self.endpoint(region),
            credentials=LOCAL_CREDENTIALS,
            connect_timeout=5,
            read_timeout=5,
        )
        return DynamoLinks(client, TABLE, region, **options)

    def generations(self) -> dict[str, int | None]:
        """The generation each region's replica says it serves (None: unreachable)."""
        served: dict[str, int | None] = {}
        for region in self.topology.regions:
            try:
                served[region] = self.reader(region).served().generation
            except StoreUnavailable:
                served[region] = None
        return served

    # -- drills --------------------------------------------------------------------

    def down(self, region: str) -> None:
        """`region`'s replica becomes unreachable: its endpoint refuses, replication to it stops."""
        self.down_regions.add(region)
        for replication in self.replications:
            if region in replication.regions:
                replication.hold(region)
        self.run(self.proxies[region].cut())

    def up(self, region: str) -> None:
        """Back: reachable again, and the changes it missed arrive (in any order)."""
        self.run(self.proxies[region].restore())
        self.down_regions.discard(region)
        for replication in self.replications:
            if region in replication.regions:
                replication.release(region)

    def promote(self, region: str) -> None:
        """Move the writer to `region`: its replica replicates outward from now on.

        Any replica of a global table accepts writes; what makes one the writer is
        the sync function's configuration (primaryRegion). The old writer's
        replication goes on delivering what it had read (to a region that is
        down, once it is back).
        """
        self.replication.stop_reading()  # a global table never sends a change back
        self.client(region).update_table(TableName=TABLE, StreamSpecification=STREAM)
        self.primary_region = region
        replication = self._replicate_from(region)
        for down in self.down_regions & set(replication.regions):
            replication.hold(down)
        self.replications.append(replication.start())

    def _replicate_from(self, source: str) -> TableReplication:
        delays = {
            r: self.topology.one_way_s(source, r) for r in self.topology.regions if r != source
        }
        return TableReplication(
            self.client(source),
            TABLE,
            {r: (self.client(r), delay) for r, delay in delays.items()},
            jitter_s=JITTER_SHARE * max(delays.values(), default=0.0),
            poll_s=STREAM_POLL_S,
        )
