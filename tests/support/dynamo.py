"""A global link table on the per-region local DynamoDBs, replicated by the simulator."""

from __future__ import annotations

import uuid

from functions.dynamo_store import DynamoLinks
from functions.lean_dynamo import LeanDynamo
from functions.links.dynamo_sync import LinkTable, Replica
from local.dynamo_replication import TableReplication, create_link_table
from local.dynamo_stack import LOCAL_CREDENTIALS
from local.servers import MotoServer, local_dynamodb_client
from local.topology import Topology


class GlobalTable:
    """A fresh table in every region; `replication` copies the primary's changes outward.

    delays: one-way delay per region from the primary (seconds); replication
    options go to TableReplication.
    """

    def __init__(self, servers: dict[str, MotoServer], *, scale: float = 0.05, **replication):
        self.name = f"links-{uuid.uuid4().hex[:10]}"
        self.servers = servers
        topology = Topology(scale=scale)
        self.primary_region = topology.primary
        clients = {r: local_dynamodb_client(s.endpoint, r) for r, s in servers.items()}
        for region, client in clients.items():
            create_link_table(client, self.name, stream=region == self.primary_region)
        self.clients = clients
        self.table = LinkTable(
            self.name,
            Replica(self.primary_region, clients[self.primary_region]),
            tuple(Replica(r, c) for r, c in clients.items()),
        )
        self.replication = TableReplication(
            clients[self.primary_region],
            self.name,
            {
                r: (c, topology.one_way_s(self.primary_region, r))
                for r, c in clients.items()
                if r != self.primary_region
            },
            **replication,
        )

    def __enter__(self) -> GlobalTable:
        self.replication.start()
        return self

    def __exit__(self, *exc) -> None:
        self.replication.stop()
        for client in self.clients.values():
            client.delete_table(TableName=self.name)

    def reader(self, region: str, **options) -> DynamoLinks:
        """What the redirect function in `region` uses (the lean client, its own replica)."""
        client = LeanDynamo(
            region,
            endpoint=self.servers[region].endpoint,
            credentials=LOCAL_CREDENTIALS,
            read_timeout=5,
            connect_timeout=5,
        )
        return DynamoLinks(client, self.name, region, **options)
