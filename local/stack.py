"""The whole topology on one machine: the real functions on real parts, all regions.

- The link store, as the stack's `linkStore` chooses:
  - Redis (elasticache): a real redis-server primary (the primary region's
    writer) and one replica per region, each replicating through a DelayProxy
    that adds half the simulated round trip between the primary region and the
    replica's region.
  - DynamoDB (dynamodb): a global table on one moto server per region, items
    replicated from the writing replica after the one-way delays, in any
    order (local.dynamo_stack).
- S3: a moto server with, per region, a versioned link-index bucket and a
  static-site bucket.
- Functions: per region one process (`local.lambda_host`) running the real
  `functions.redirect.handler` and `functions.health.handler` behind a local
  API Gateway, configured like the Lambda (its region's replica of the store,
  its own index bucket); in the primary region one more process running the real
  `functions.sync.handler`, invoked with real S3 event notifications.
- Publishing goes the real path: build, upload to the primary bucket,
  replicate the object to every other region's bucket, S3 event -> sync.
- The edge (local.edge) steers clients like Cloudflare + CloudFront.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import select
import shutil
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote_plus

import requests
import yaml
from botocore.exceptions import BotoCoreError, ClientError

from components.planning import repository_web_url
from functions.links.index import Index, build_index
from functions.links.model import DIRECTORY_FILES
from functions.links.s3 import S3Location, put_directory, put_index
from functions.links.source import load_links
from local.delay_proxy import DelayProxy
from local.dynamo_stack import LocalDynamoDB
from local.edge import CLOUDFRONT_API_PREFIX, ORIGIN_VERIFY_HEADER, Edge
from local.route53_edge import Route53Edge
from local.servers import (
    LOOPBACK,
    ChildRecord,
    MotoS3Server,
    Process,
    RedisServer,
    ServerError,
    listening_socket,
    local_s3_client,
    local_s3_env,
    local_sqs_client,
    wait_until,
)
from local.topology import Topology

ROUTERS = ("cloudflare", "route53")
STORES = ("elasticache", "dynamodb")

REPO = Path(__file__).resolve().parent.parent
INDEX_KEY = "index/links.json"
STATIC_SITE = REPO / "static-site"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}
REGION_ROUTES = ["GET /healthz=functions.health.handler", "$default=functions.redirect.handler"]


def dev_stack_repository_url() -> str | None:
    """The GitHub repository of the dev stack, which the local stack plays."""
    config = yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text()).get("config") or {}
    repository = config.get("golinks:githubRepository")
    return repository_web_url(repository) if repository else None


class PublishFailed(RuntimeError):
    """The index reached S3 but the sync function did not apply it."""


@dataclass
class Endpoints:
    """Where the running stack's parts listen; saved to state.json for other commands."""

    primary_region: str
    s3_endpoint: str
    index_buckets: dict[str, str]
    sync_url: str
    origin_verify: str
    edge_url: str = ""
    region_urls: dict[str, str] = field(default_factory=dict)
    redis_primary_url: str = ""
    redis_replica_urls: dict[str, str] = field(default_factory=dict)
    control_url: str = ""
    """Where `python -m local region down|up` reaches the running stack (empty: nowhere)."""
    store: str = "elasticache"
    dynamodb_endpoints: dict[str, str] = field(default_factory=dict)
    """Region -> where its functions reach its replica of the link table (store dynamodb)."""
    distribution_ids: dict[str, str] = field(default_factory=dict)
    """Region -> the CloudFront distribution its clients go through (the edge's)."""

    def save(self, directory: Path) -> None:
        (directory / "state.json").write_text(json.dumps(self.__dict__, indent=2))
        (directory / "stack-outputs.json").write_text(json.dumps(self.stack_outputs(), indent=2))

    @classmethod
    def load(cls, path: Path) -> Endpoints:
        return cls(**json.loads(path.read_text()))

    def publisher_env(self) -> dict[str, str]:
        """boto3 settings for publishing: the local S3, and the edge as CloudFront's API."""
        return {
            **local_s3_env(self.s3_endpoint),
            "AWS_ENDPOINT_URL_CLOUDFRONT": f"{self.edge_url}{CLOUDFRONT_API_PREFIX}",
        }

    @property
    def index_s3_uri(self) -> str:
        return f"s3://{self.index_buckets[self.primary_region]}/{INDEX_KEY}"

    def stack_outputs(self) -> dict:
        """The part of `pulumi stack output --json` that publishing uses, for the local stack."""
        return {
            "url": self.edge_url,
            "primary_region": self.primary_region,
            "index_s3_uri": self.index_s3_uri,
            "regions": {
                region: {
                    "healthz_url": f"{url}/healthz",
                    "index_bucket": self.index_buckets[region],
                    "distribution_id": self.distribution_ids[region],
                    "static_bucket": static_bucket(region),
                }
                for region, url in self.region_urls.items()
            },
        }


@dataclass(frozen=True)
class Published:
    version: str
    count: int
    s3_version_id: str
    sync_result: object
    seconds: float


class IndexNotifications:
    """What S3 replication and the bucket notification do in AWS, for the local S3.

    Every index bucket notifies an SQS queue in its region of each ObjectCreated
    event (an S3 notification target in AWS too), and a thread long-polls the
    primary region's queue: idle, it makes one request per `wait_seconds` and
    the local S3 does no work. On an event for the primary bucket, each new
    object version is copied to every other region's bucket, then the sync
    function is invoked with an ObjectCreated:Put event; a failed invocation is
    retried twice, as Lambda retries asynchronous invocations. Outcomes are kept per S3 version.
    """

    RETRY_DELAYS_S = (0.5, 1.0)
    QUEUE = "link-index-events"

    def __init__(self, stack: LocalStack, wait_seconds: int = 20):
        """`wait_seconds`: the long poll (SQS allows up to 20)."""
        self.stack = stack
        self.wait_seconds = wait_seconds
        self.s3 = local_s3_client(stack.s3_server.endpoint)
        self.queue_urls: dict[str, str] = {}
        self._sqs_clients: dict[str, object] = {}
        self._seen: set[str] = set()
        self._sequence = 0
        self._outcomes: dict[str, tuple[bool, object]] = {}
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="s3-notifications", daemon=True)

    def start(self) -> IndexNotifications:
        for region, bucket in self.stack.endpoints.index_buckets.items():
            sqs = self._sqs(region)
            self.queue_urls[region] = sqs.create_queue(QueueName=self.QUEUE)["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(
                QueueUrl=self.queue_urls[region], AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
            s3 = local_s3_client(self.stack.s3_server.endpoint, region)
            s3.put_bucket_notification_configuration(
                Bucket=bucket,
                NotificationConfiguration={
                    "QueueConfigurations": [
                        {
                            "Id": "link-index-sync",
                            "QueueArn": queue_arn,
                            "Events": ["s3:ObjectCreated:*"],
                            "Filter": {
                                "Key": {"FilterRules": [{"Name": "prefix", "Value": INDEX_KEY}]}
                            },
                        }
                    ]
                },
            )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._wake()
            self._thread.join(10)

    def ignore_existing(self) -> None:
        """After a failover the new primary bucket already holds replicated copies: no events.

        The poller moves to the new primary region's queue."""
        self._seen.update(v["VersionId"] for v in self._versions(self._primary_bucket()))
        self._wake()

    def _wake(self) -> None:
        """End the long poll now (a message no bucket sent)."""
        for region, url in self.queue_urls.items():
            with contextlib.suppress(BotoCoreError, ClientError):
                self._sqs(region).send_message(QueueUrl=url, MessageBody="wake")

    def _sqs(self, region: str):
        if region not in self._sqs_clients:
            self._sqs_clients[region] = local_sqs_client(self.stack.s3_server.endpoint, region)
        return self._sqs_clients[region]

    def outcome(self, s3_version_id: str, timeout: float = 60) -> object:
        """The sync function's result for this upload; PublishFailed when it failed."""
        with self._changed:
            if not self._changed.wait_for(lambda: s3_version_id in self._outcomes, timeout):
                raise PublishFailed(f"no sync result for S3 version {s3_version_id} in {timeout} s")
            ok, result = self._outcomes[s3_version_id]
        if not ok:
            raise PublishFailed(str(result))
        return result

    def _primary_bucket(self) -> str:
        endpoints = self.stack.endpoints
        return endpoints.index_buckets[endpoints.primary_region]

    def _versions(self, bucket: str) -> list[dict]:
        listed = self.s3.list_object_versions(Bucket=bucket, Prefix=INDEX_KEY).get("Versions", [])
        return sorted(listed, key=lambda v: v["LastModified"])

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                buckets = self._receive()
                if self._stop.is_set() or self._primary_bucket() not in buckets:
                    continue
                bucket = self._primary_bucket()
                fresh = [v for v in self._versions(bucket) if v["VersionId"] not in self._seen]
            except (BotoCoreError, ClientError):  # the local S3 stopping at shutdown
                self._stop.wait(0.5)
                continue
            for version in fresh:
                self._seen.add(version["VersionId"])
                self._deliver(bucket, version)

    def _receive(self) -> set[str]:
        """Wait for S3 events; the buckets they are about."""
        region = self.stack.endpoints.primary_region
        sqs, queue_url = self._sqs(region), self.queue_urls[region]
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=self.wait_seconds
        ).get("Messages", [])
        if messages:
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
        buckets = set()
        for message in messages:
            with contextlib.suppress(ValueError, AttributeError, TypeError, KeyError):
                for record in json.loads(message["Body"]).get("Records", []):
                    buckets.add(record["s3"]["bucket"]["name"])
        return buckets

    def _deliver(self, bucket: str, version: dict) -> None:
        endpoints = self.stack.endpoints
        source = {"Bucket": bucket, "Key": INDEX_KEY, "VersionId": version["VersionId"]}
        for other in endpoints.index_buckets.values():
            if other != bucket:
                self.s3.copy_object(Bucket=other, Key=INDEX_KEY, CopySource=source)
        self._sequence += 1
        event = s3_put_event(
            endpoints.primary_region,
            bucket,
            INDEX_KEY,
            size=version["Size"],
            etag=version["ETag"].strip('"'),
            version_id=version["VersionId"],
            sequencer=f"{self._sequence:016X}",
        )
        outcome: tuple[bool, object] = (False, "not invoked")
        for delay in (0, *self.RETRY_DELAYS_S):
            time.sleep(delay)
            try:
                outcome = (True, invoke(self.stack.endpoints.sync_url, "sync", event))
                break
            except PublishFailed as exc:
                outcome = (False, str(exc))
        with self._changed:
            self._outcomes[version["VersionId"]] = outcome
            self._changed.notify_all()


def invoke(base_url: str, function: str, event: dict, timeout: float = 120) -> object:
    """Lambda's Invoke API against a local function host; PublishFailed on a function error."""
    url = f"{base_url}/2015-03-31/functions/{function}/invocations"
    try:
        response = requests.post(url, json=event, timeout=timeout)
        body = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise PublishFailed(f"the {function} function is unreachable: {exc}") from None
    if response.headers.get("X-Amz-Function-Error") or response.status_code != 200:
        detail = body.get("errorMessage", body) if isinstance(body, dict) else body
        raise PublishFailed(f"the {function} function failed: {detail}")
    return body


def s3_put_event(
    region: str,
    bucket: str,
    key: str,
    *,
    size: int,
    etag: str,
    version_id: str | None,
    sequencer: str,
) -> dict:
    """An S3 ObjectCreated:Put notification, as S3 delivers it to Lambda."""
    now = datetime.now(UTC)
    obj = {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag, "sequencer": sequencer}
    if version_id:
        obj["versionId"] = version_id
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:LOCALPUBLISHER"},
                "requestParameters": {"sourceIPAddress": LOOPBACK},
                "responseElements": {
                    "x-amz-request-id": secrets.token_hex(8).upper(),
                    "x-amz-id-2": secrets.token_urlsafe(32),
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "link-index-sync",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "LOCALOWNER"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": obj,
                },
            }
        ]
    }


class FunctionHost(Process):
    """A `local.lambda_host` process with a function's environment."""

    def __init__(self, workdir: Path, name: str, env: dict[str, str], routes=(), invokes=()):
        super().__init__(name, workdir)
        self.port = 0
        """0 until the first start binds a free port; every later start binds it again."""
        self.env = env
        self.routes, self.invokes = list(routes), list(invokes)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 30) -> FunctionHost:
        # The process gets the socket bound here: no other process can take the port between
        # choosing and binding it. Ours is closed once handed over, so that when the process
        # dies nothing listens there any more (connections are refused, as from a dead API).
        ready, told = os.pipe()
        try:
            with listening_socket(self.port) as listener:
                self.port = listener.getsockname()[1]
                argv = [sys.executable, "-m", "local.lambda_host"]
                argv += ["--listen-fd", str(listener.fileno()), "--ready-fd", str(told)]
                argv += [arg for route in self.routes for arg in ("--route", route)]
                argv += [arg for invoke_ in self.invokes for arg in ("--invoke", invoke_)]
                env = {**os.environ, "PYTHONPATH": str(REPO), **self.env}
                self.spawn(argv, env=env, pass_fds=(listener.fileno(), told))
            os.close(told)  # only the process holds it now: EOF when it dies
            told = None
            self._wait_ready(ready, timeout)
        finally:
            os.close(ready)
            if told is not None:
                os.close(told)
        return self

    def _wait_ready(self, ready: int, timeout: float) -> None:
        """Until the process says it serves; ServerError (and stopped) if it exits or hangs."""
        readable, _, _ = select.select([ready], [], [], timeout)
        if readable and os.read(ready, 16):
            return
        self.stop()
        problem = "exited" if readable else f"did not start in {timeout:.0f} s"
        raise ServerError(f"{self.name} {problem}:\n{self.log_tail()}")


class LocalStack:
    """Start, drill and stop the local topology. Use as a context manager."""

    def __init__(
        self,
        state_dir: Path,
        *,
        topology: Topology | None = None,
        monitor_interval: float = 1.0,
        edge_port: int = 8080,
        links: Path = REPO / "links",
        cache_seconds: int | None = None,
        links_repository_url: str | None = dev_stack_repository_url(),
        router: str = "cloudflare",
        store: str = "elasticache",
    ):
        """`cache_seconds` overrides how long the functions let the edge cache
        redirects and 404s (None: the functions' defaults). `links_repository_url`:
        where 404 pages offer to create a link (default: the dev stack's repository).
        `router`: cloudflare (the edge emulates Cloudflare's load balancer in front of one
        CloudFront per region) or route53 (one CloudFront, the real Lambda@Edge router,
        Route 53 latency answers and health checks; `monitor_interval` is the health
        checks' interval). `store`: elasticache (Redis primary and replicas) or dynamodb (a
        global table on one local DynamoDB per region)."""
        if router not in ROUTERS:
            raise ValueError(f"router must be one of {', '.join(ROUTERS)}")
        if store not in STORES:
            raise ValueError(f"store must be one of {', '.join(STORES)}")
        self.router = router
        self.store = store
        self.state_dir = state_dir
        self.topology = topology or Topology()
        self.monitor_interval = monitor_interval
        # 0: the edge binds any free port itself (a port chosen here could be taken by one of
        # the stack's own outgoing connections before the edge binds it).
        self.edge_port = edge_port
        self.links = links
        self.cache_seconds = cache_seconds
        self.links_repository_url = links_repository_url
        self.origin_verify = secrets.token_urlsafe(24)
        self.primary_region = self.topology.primary
        self.loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.s3_server: MotoS3Server | None = None
        self.primary: RedisServer | None = None
        self.replicas: dict[str, RedisServer] = {}
        self.proxies: dict[str, DelayProxy] = {}
        self.dynamodb: LocalDynamoDB | None = None
        self.hosts: dict[str, FunctionHost] = {}
        self.sync_host: FunctionHost | None = None
        self.edge: Edge | None = None
        self.endpoints: Endpoints | None = None
        self.notifications: IndexNotifications | None = None
        self.version: str | None = None
        self.children = ChildRecord(state_dir / "children.jsonl")
        self.leftovers_stopped: list[str] = []
        self._reported_exits: set[int] = set()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def run(self, coroutine):
        """Run a coroutine on the stack's event loop (proxies and edge live there)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> LocalStack:
        """Start every part; first stop what an earlier run in `state_dir` left running."""
        self.leftovers_stopped = self.children.stop_leftovers()
        check_port_free(self.edge_port)
        shutil.rmtree(self.state_dir, ignore_errors=True)
        self.state_dir.mkdir(parents=True)
        self._loop_thread.start()
        try:
            self._start_s3()
            if self.store == "dynamodb":
                self.dynamodb = LocalDynamoDB(
                    self.state_dir, self.topology, self.run, self.children
                ).start()
            else:
                self._start_redis()
            self._start_functions()
            self.notifications = IndexNotifications(self).start()
            index = build_index(load_links([self.links]))
            self.publish(index)
            self.edge = self.run(self._start_edge())
            self.endpoints.edge_url = f"http://{LOOPBACK}:{self.edge.port}"
            self.endpoints.distribution_ids = self.edge.distribution_ids()
            self.endpoints.save(self.state_dir)
            self.wait_until_served(index.version)
            self.wait_until_in_rotation(*self.topology.regions)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.notifications:
            self.notifications.stop()
        if self.edge:
            self.run(self.edge.stop())
        for host in [*self.hosts.values(), self.sync_host]:
            if host:
                host.stop()
        for replica in self.replicas.values():
            replica.stop()
        if self.primary:
            self.primary.stop()
        if self.dynamodb:
            self.dynamodb.stop()
        if self._loop_thread.is_alive():
            for proxy in self.proxies.values():
                self.run(proxy.stop())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._loop_thread.join(5)
        if self.s3_server:
            self.s3_server.stop()

    def _start_s3(self) -> None:
        self.s3_server = self._recorded(MotoS3Server(self.state_dir / "s3")).start()
        site_files = sorted(p for p in STATIC_SITE.rglob("*") if p.is_file())
        self._index_buckets = {}
        for region in self.topology.regions:
            # A bucket is created through its own region's endpoint.
            s3 = local_s3_client(self.s3_server.endpoint, region)
            index_bucket, site_bucket = f"golinks-index-{region}", static_bucket(region)
            for bucket in (index_bucket, site_bucket):
                location = {"LocationConstraint": region}
                s3.create_bucket(Bucket=bucket, CreateBucketConfiguration=location)
            versioning = {"Status": "Enabled"}
            s3.put_bucket_versioning(Bucket=index_bucket, VersioningConfiguration=versioning)
            for path in site_files:
                content_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
                key = path.relative_to(STATIC_SITE).as_posix()
                s3.put_object(
                    Bucket=site_bucket, Key=key, Body=path.read_bytes(), ContentType=content_type
                )
            self._index_buckets[region] = index_bucket
        s3 = local_s3_client(self.s3_server.endpoint)
        self.static_site = S3StaticSite(s3, self.topology.regions)

    def _start_redis(self) -> None:
        primary = RedisServer(self.state_dir / "redis-primary", name="redis-primary")
        self.primary = self._recorded(primary).start()
        for region in self.topology.regions:
            self._start_replica(region)

    def _start_replica(self, region: str) -> RedisServer:
        primary_region = self.primary_region
        proxy = self.run(
            DelayProxy(self.primary.port, self.topology.one_way_s(primary_region, region)).start()
        )
        self.proxies[region] = proxy
        replica = RedisServer(
            self.state_dir / f"redis-{region}",
            name=f"redis-{region}",
            port=self.replicas[region].port if region in self.replicas else None,
            replica_of=self.primary,
            replication_port=proxy.port,
        )
        self.replicas[region] = self._recorded(replica).start()
        return replica

    def _function_env(self, region: str, store: dict[str, str]) -> dict[str, str]:
        """A function's environment in `region`; `store`: its link store's settings."""
        env = {
            **self.s3_server.env(),
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "PRIMARY_REGION": self.primary_region,
            **store,
            "LINK_INDEX_BUCKET": self._index_buckets[region],
            "LINK_INDEX_KEY": INDEX_KEY,
            "ORIGIN_VERIFY": self.origin_verify,
        }
        if self.links_repository_url:
            env["LINKS_REPOSITORY_URL"] = self.links_repository_url
        if self.cache_seconds is not None:
            env["REDIRECT_CACHE_SECONDS"] = env["NOT_FOUND_CACHE_SECONDS"] = str(self.cache_seconds)
        return env

    def _start_functions(self) -> None:
        for region in self.topology.regions:
            self._start_region(region)
        self._start_sync()
        self.endpoints = Endpoints(
            primary_region=self.primary_region,
            s3_endpoint=self.s3_server.endpoint,
            index_buckets=self._index_buckets,
            sync_url=self.sync_host.url,
            origin_verify=self.origin_verify,
            region_urls={region: host.url for region, host in self.hosts.items()},
            redis_primary_url=self.primary.url if self.primary else "",
            redis_replica_urls={region: r.url for region, r in self.replicas.items()},
            store=self.store,
            dynamodb_endpoints={
                region: self.dynamodb.endpoint(region) for region in self.topology.regions
            }
            if self.dynamodb
            else {},
        )

    def _start_region(self, region: str) -> FunctionHost:
        previous = self.hosts.get(region)
        host = FunctionHost(
            self.state_dir / f"functions-{region}",
            f"functions-{region}",
            self._function_env(region, self._reader_store(region)),
            routes=REGION_ROUTES,
        )
        if previous:
            host.port = previous.port  # the API's address does not change when it recovers
        self.hosts[region] = self._recorded(host).start()
        return host

    def _start_sync(self) -> None:
        sync_host = FunctionHost(
            self.state_dir / "functions-sync",
            "functions-sync",
            self._function_env(self.primary_region, self._writer_store()),
            invokes=["sync=functions.sync.handler"],
        )
        self.sync_host = self._recorded(sync_host).start()

    def _reader_store(self, region: str) -> dict[str, str]:
        """The redirect and health functions' store settings: the region's replica."""
        if self.dynamodb:
            return self.dynamodb.function_env(region)
        return {"REDIS_URL": self.replicas[region].url}

    def _writer_store(self) -> dict[str, str]:
        """The sync function's store settings: the writer, in the primary region."""
        if self.dynamodb:
            return self.dynamodb.sync_env()
        return {"REDIS_URL": self.primary.url}

    def _recorded(self, process: Process):
        process.record = self.children
        return process

    def processes(self) -> list[Process]:
        """Every child process of the stack (the nine of a three-region stack)."""
        return (
            [
                p
                for p in (self.s3_server, self.primary, *self.replicas.values(), self.sync_host)
                if p is not None
            ]
            + (self.dynamodb.processes() if self.dynamodb else [])
            + list(self.hosts.values())
        )

    def unexpected_exits(self) -> list[Process]:
        """Children that died since the last call without being stopped (each reported once)."""
        exited = []
        for process in self.processes():
            proc = process.proc
            if proc is None or process.exit_expected or proc.pid in self._reported_exits:
                continue
            if proc.poll() is not None:
                self._reported_exits.add(proc.pid)
                exited.append(process)
        return exited

    async def _start_edge(self) -> Edge:
        edge_class = Route53Edge if self.router == "route53" else Edge
        return await edge_class(
            self.topology,
            {region: host.url for region, host in self.hosts.items()},
            origin_verify=self.origin_verify,
            static_site=self.static_site,
            interval=self.monitor_interval,
            port=self.edge_port,
        ).start()

    # -- publishing ----------------------------------------------------------------

    def publish(self, index: Index | None = None) -> Published:
        """Upload the index as CI does and wait for the S3 notification's sync to finish.

        Raises PublishFailed when the sync function failed (after its retries).
        """
        started = time.perf_counter()
        index = index or build_index(load_links([self.links]))
        location = S3Location.parse(self.endpoints.index_s3_uri)
        uploaded = put_index(location, index, self.notifications.s3)
        put_directory(index, map(static_bucket, self.topology.regions), self.notifications.s3)
        result = self.notifications.outcome(uploaded.s3_version_id)
        self.version = index.version
        return Published(
            index.version,
            index.count,
            uploaded.s3_version_id,
            result,
            time.perf_counter() - started,
        )

    def region_health(self, region: str) -> dict:
        headers = {ORIGIN_VERIFY_HEADER: self.origin_verify}  # as CloudFront would add
        return requests.get(f"{self.hosts[region].url}/healthz", headers=headers, timeout=5).json()

    def served_versions(self) -> dict[str, str | None]:
        versions = {}
        for region in self.topology.regions:
            try:
                versions[region] = self.region_health(region).get("version")
            except (requests.RequestException, ValueError):
                versions[region] = None
        return versions

    def wait_until_served(self, version: str, timeout: float = 30) -> None:
        wait_until(
            lambda: set(self.served_versions().values()) == {version},
            timeout,
            f"every region to serve {version}",
            interval=0.02,
        )

    def wait_until_in_rotation(self, *regions: str, timeout: float = 10) -> None:
        """Until the edge's monitor has seen each region healthy."""
        wait_until(
            lambda: all(self.edge.regions[r].healthy for r in regions),
            timeout,
            f"the edge to put {', '.join(regions)} in rotation",
            interval=0.01,
        )

    # -- drills --------------------------------------------------------------------

    def region_down(self, region: str) -> None:
        """Take a region out by hand: its functions stop, the edge's monitor notices."""
        self.hosts[region].stop()
        wait_until(
            lambda: not self.edge.regions[region].healthy,
            10 * self.monitor_interval + 5,
            f"the edge to take {region} out of rotation",
        )

    def region_up(self, region: str) -> None:
        """Bring a region back: its functions start again and it rejoins the rotation."""
        if not self.hosts[region].running:
            self._start_region(region)
        self.wait_until_in_rotation(region, timeout=10 * self.monitor_interval + 5)

    def kill_region(self, region: str) -> None:
        self.hosts[region].kill()

    def restart_region(self, region: str) -> None:
        self._start_region(region)

    @property
    def store_source(self) -> str:
        """What a region's health reports as its source while its store answers."""
        return "dynamodb" if self.dynamodb else "redis"

    def kill_replica(self, region: str) -> None:
        """The region's replica of the store dies (DynamoDB: it becomes unreachable)."""
        if self.dynamodb:
            self.dynamodb.down(region)
        else:
            self.replicas[region].kill()

    def restart_replica(self, region: str) -> None:
        if self.dynamodb:
            self.dynamodb.up(region)
        else:
            self.replicas[region].start()

    def kill_primary(self) -> None:
        """The writer dies (DynamoDB: the primary region's table becomes unreachable)."""
        if self.dynamodb:
            self.dynamodb.down(self.primary_region)
        else:
            self.primary.kill()

    def promote(self, region: str) -> None:
        """Move the writer to `region`, then re-point the program (`primaryRegion`).

        Redis: what FailoverGlobalReplicationGroup does; the region's replica
        becomes the writer and every other replica follows it over links delayed
        from the new primary region. DynamoDB: the region's replica takes the
        writes and replicates them outward. Either way the sync function and
        publishing move there.
        """
        if self.dynamodb:
            self.dynamodb.promote(region)
            self.primary_region = region
        else:
            self._promote_redis(region)
        self.sync_host.stop()
        self._start_sync()
        self.endpoints.primary_region = region
        self.endpoints.sync_url = self.sync_host.url
        self.notifications.ignore_existing()  # replicated copies are not new uploads
        self.endpoints.save(self.state_dir)

    def _promote_redis(self, region: str) -> None:
        new_primary = self.replicas[region]
        new_primary.client().replicaof("NO", "ONE")
        self.primary_region = region
        for other, replica in self.replicas.items():
            if other == region or not replica.running:
                continue
            self.run(self.proxies[other].stop())
            proxy = self.run(
                DelayProxy(new_primary.port, self.topology.one_way_s(region, other)).start()
            )
            self.proxies[other] = proxy
            replica.replica_of, replica.replication_port = new_primary, proxy.port
            replica.client().replicaof(LOOPBACK, proxy.port)
        self.primary = new_primary


def check_port_free(port: int) -> None:
    """ServerError at once, with the fix, when something already listens on `port`."""
    with socket.socket() as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError as exc:
            raise ServerError(
                f"port {port} is already in use ({exc.strerror}): another program listens "
                f"there. Start on another port: python -m local --port {port + 1}"
                f"  (make dev ARGS='--port {port + 1}')"
            ) from None


class S3StaticSite:
    """The static site as each region's CloudFront serves it: read from that region's bucket.

    The site's files are loaded once at start (CloudFront caches them too), so
    the edge never waits on S3 for them; the link directory, rewritten by every
    publish, is read from the bucket on each request.
    """

    def __init__(self, s3, regions):
        self.s3 = s3
        self.objects: dict[tuple[str, str], tuple[bytes, str]] = {}
        for region in regions:
            bucket = static_bucket(region)
            for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
                if item["Key"] not in DIRECTORY_FILES:
                    self.objects[region, item["Key"]] = self._read(bucket, item["Key"])

    def get(self, region: str, key: str) -> tuple[bytes, str] | None:
        if key in DIRECTORY_FILES:
            try:
                return self._read(static_bucket(region), key)
            except self.s3.exceptions.NoSuchKey:
                return None
        return self.objects.get((region, key))

    def _read(self, bucket: str, key: str) -> tuple[bytes, str]:
        obj = self.s3.get_object(Bucket=bucket, Key=key)
        return obj["Body"].read(), obj["ContentType"]


def static_bucket(region: str) -> str:
    return f"golinks-static-{region}"
