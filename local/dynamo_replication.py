"""DynamoDB global table replication between local regions, simulated on real moto servers.

Each simulated region runs its own moto server holding its replica of the
table. As in a global table, every change to an item in the writing region
reaches each other region on its own: after that region's one-way delay plus
a random jitter (so changes overtake one another), some deliveries lost and
redelivered later, and a region applies a change only when it is newer than
what it already holds for that item (last writer wins; the writer's stream
sequence number is the clock, since one region writes).

Changes are read from the writing replica's DynamoDB stream (NEW_AND_OLD_IMAGES,
what global tables replicate from).
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from dataclasses import dataclass, field

from functions.links.dynamo_items import KEY
from local.servers import local_dynamodb_client

SHARD_CHECK_POLLS = 200
#: Changes due at once reach a region in one BatchWriteItem (its limit), as a replica
#: applies many at a time; each change still arrives on its own schedule.
DELIVERY_BATCH = 25


def create_link_table(client, name: str, *, stream: bool = False) -> None:
    """The link table as the stack defines it: string key `pk`, on demand; a stream to replicate."""
    options = {}
    if stream:
        options["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": KEY, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        **options,
    )


@dataclass
class _Region:
    client: object
    delay_s: float
    queue: list = field(default_factory=list)  # heap of (due, tie, sequence, record)
    applied: dict[str, int] = field(default_factory=dict)  # key -> newest sequence applied
    newest: int = -1  # the newest sequence delivered so far
    held: bool = False
    in_flight: int = 0


class TableReplication:
    """Copies every change of `table` from `source` to each target region, unordered.

    targets: region -> (boto3 DynamoDB client of that region, one-way delay in
    seconds). jitter_s: extra random delay per change (0: delivered in order).
    redeliver_share: fraction of deliveries lost once and delivered again
    redeliver_after_s later. seed makes a run repeatable. poll_s: the pause after a read
    of the stream that found nothing (after one that found changes, the next follows at once).
    """

    def __init__(
        self,
        source,
        table: str,
        targets: dict[str, tuple[object, float]],
        *,
        jitter_s: float = 0.0,
        redeliver_share: float = 0.0,
        redeliver_after_s: float = 0.0,
        seed: int | None = None,
        poll_s: float = 0.005,
    ):
        self.source = source
        self.table = table
        self.regions = {name: _Region(client, delay) for name, (client, delay) in targets.items()}
        self.jitter_s = jitter_s
        self.redeliver_share = redeliver_share
        self.redeliver_after_s = redeliver_after_s
        self.poll_s = poll_s
        self.delivered = 0
        self.redelivered = 0
        self.overtaken = 0  # changes that arrived after a newer one for the same item
        self.reordered = 0  # changes that arrived after a later change of another item
        self.changed_keys: list[str] = []  # every item change read from the stream, in order
        self._random = random.Random(seed)  # noqa: S311 - simulated delays, not secrets
        self._tie = itertools.count()
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._not_reading = threading.Event()
        self._polls = 0
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> TableReplication:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> TableReplication:
        self._arn = self.source.describe_table(TableName=self.table)["Table"]["LatestStreamArn"]
        self._streams = local_dynamodb_client(
            self.source.meta.endpoint_url, self.source.meta.region_name, "dynamodbstreams"
        )
        self._threads = [threading.Thread(target=self._poll, name="replication-poll", daemon=True)]
        self._threads += [
            threading.Thread(target=self._deliver, args=(name,), name=f"replication-{name}")
            for name in self.regions
        ]
        for thread in self._threads:
            thread.daemon = True
            thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()
        for thread in self._threads:
            thread.join(5)

    def stop_reading(self) -> None:
        """The source is no longer written by the service (the writer moved): changes it
        receives from elsewhere are not sent on; what was read is still delivered."""
        self._not_reading.set()

    def hold(self, region: str) -> None:
        """Stop delivering to `region` (a slow or cut-off link); changes queue up."""
        with self._changed:
            self.regions[region].held = True

    def release(self, region: str) -> None:
        with self._changed:
            self.regions[region].held = False
            self._changed.notify_all()

    def wait_idle(self, timeout: float = 30) -> None:
        """Until every change written before this call has been delivered everywhere (not held)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            target = self._polls + 2  # a full stream read started after this call
            while not (
                self._polls >= target
                and all(
                    not r.queue and not r.in_flight for r in self.regions.values() if not r.held
                )
            ):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("replication did not go idle")
                self._changed.wait(remaining)

    def _poll(self) -> None:
        iterators: dict[str, str] = {}
        for polls in itertools.count():
            if self._stopping.is_set() or self._not_reading.is_set():
                return
            if polls % SHARD_CHECK_POLLS == 0:  # new shards are rare; records are not
                self._add_shards(iterators)
            found = False
            for shard_id, iterator in list(iterators.items()):
                if iterator is None:
                    continue
                answer = self._streams.get_records(ShardIterator=iterator)
                iterators[shard_id] = answer.get("NextShardIterator")
                self._schedule(answer["Records"])
                found = found or bool(answer["Records"])
            with self._changed:
                self._polls += 1
                self._changed.notify_all()
            if not found:
                self._stopping.wait(self.poll_s)

    def _add_shards(self, iterators: dict[str, str | None]) -> None:
        shards = self._streams.describe_stream(StreamArn=self._arn)["StreamDescription"]
        for shard in shards["Shards"]:
            if shard["ShardId"] not in iterators:
                iterators[shard["ShardId"]] = self._streams.get_shard_iterator(
                    StreamArn=self._arn,
                    ShardId=shard["ShardId"],
                    ShardIteratorType="TRIM_HORIZON",
                )["ShardIterator"]

    def _schedule(self, records: list[dict]) -> None:
        now = time.monotonic()
        with self._changed:
            for record in records:
                sequence = int(record["dynamodb"]["SequenceNumber"])
                self.changed_keys.append(record["dynamodb"]["Keys"][KEY]["S"])
                for region in self.regions.values():
                    due = now + region.delay_s + self._random.uniform(0, self.jitter_s)
                    lost = self._random.random() < self.redeliver_share
                    if lost:
                        self.redelivered += 1
                        due += self.redeliver_after_s
                    heapq.heappush(region.queue, (due, next(self._tie), sequence, record))
            self._changed.notify_all()

    def _deliver(self, name: str) -> None:
        region = self.regions[name]
        while True:
            with self._changed:
                while True:
                    if self._stopping.is_set():
                        return
                    wait = None
                    if region.queue and not region.held:
                        wait = region.queue[0][0] - time.monotonic()
                        if wait <= 0:
                            batch = self._due(region)
                            region.in_flight += len(batch)
                            break
                    self._changed.wait(wait)
            try:
                self._apply(region, batch)
            finally:
                with self._changed:
                    region.in_flight -= len(batch)
                    self._changed.notify_all()

    @staticmethod
    def _due(region: _Region) -> list[tuple[int, dict]]:
        """(sequence, record) of the changes due now, in the order they arrive."""
        now, batch = time.monotonic(), []
        while region.queue and region.queue[0][0] <= now and len(batch) < DELIVERY_BATCH:
            _, _, sequence, record = heapq.heappop(region.queue)
            batch.append((sequence, record))
        return batch

    def _apply(self, region: _Region, batch: list[tuple[int, dict]]) -> None:
        writes: dict[str, dict] = {}
        for sequence, record in batch:
            change = record["dynamodb"]
            key = change["Keys"][KEY]["S"]
            if sequence < region.newest:
                self.reordered += 1
            region.newest = max(region.newest, sequence)
            if region.applied.get(key, -1) >= sequence:
                self.overtaken += 1  # a newer change already arrived: last writer wins
                continue
            if record["eventName"] == "REMOVE":
                writes[key] = {"DeleteRequest": {"Key": change["Keys"]}}
            else:
                writes[key] = {"PutRequest": {"Item": change["NewImage"]}}
            region.applied[key] = sequence
            self.delivered += 1
        requests = list(writes.values())
        while requests:
            answer = region.client.batch_write_item(RequestItems={self.table: requests})
            requests = answer.get("UnprocessedItems", {}).get(self.table, [])
