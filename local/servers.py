"""Real servers on loopback for tests and the local stack: redis-server and a moto S3.

Every server runs as a child process in its own working directory, on a free
127.0.0.1 port, and is stopped by whoever started it (tests through fixtures,
`make dev` on exit). Nothing here talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import redis

LOOPBACK = "127.0.0.1"


class ServerError(RuntimeError):
    """A local server could not be started."""


def free_port() -> int:
    """A port free now (another process may take it before it is bound: where a child can
    take a listening socket instead, pass it one, see `listening_socket`)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def listening_socket(port: int = 0) -> socket.socket:
    """A socket listening on 127.0.0.1:`port` (0: any free port), to hand to a child."""
    sock = socket.socket()
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart takes it back
        sock.bind((LOOPBACK, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def wait_until(predicate, timeout: float, what: str, interval: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise ServerError(f"timed out after {timeout:.0f} s waiting for {what}")


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise ServerError(
            f"{name} is not installed; run `make setup` (Debian: apt-get install redis-server)"
        )
    return path


@dataclass(frozen=True)
class TlsFiles:
    """Certificate, key and CA for a TLS redis-server (see `make_test_ca`)."""

    cert: Path
    key: Path
    ca: Path


PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def _die_with_parent(parent_pid: int) -> None:
    """In the child, before exec: SIGKILL when the parent dies (Linux keeps it across exec).

    The kernel ties it to the thread that forked: children are spawned from
    long-lived threads (the main thread) only."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the line above
        os._exit(1)


def start_time(pid: int) -> int | None:
    """When the process started (clock ticks since boot); None when no such process runs
    (none, or a zombie). With the PID, it names one process: a PID reused later has
    another start time."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else int(fields[19])


class ChildRecord:
    """The processes a run started (PID, start time, name), one JSON line each.

    A run killed with SIGKILL cannot stop its children; its children die with it
    (see `_die_with_parent`), and the next run stops whatever is left by this
    record: only processes whose PID *and* start time match, never by name."""

    def __init__(self, path: Path):
        self.path = path

    def add(self, name: str, pid: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"name": name, "pid": pid, "start_time": start_time(pid)}
        with self.path.open("a") as record:
            record.write(json.dumps(entry) + "\n")

    def stop_leftovers(self, timeout: float = 5) -> list[str]:
        """SIGKILL every recorded process still running; `name (pid N)` of each."""
        try:
            entries = [json.loads(line) for line in self.path.read_text().splitlines() if line]
        except (OSError, ValueError):
            return []
        stopped: dict[int, str] = {}
        for entry in entries:
            pid, started = entry.get("pid"), entry.get("start_time")
            if not isinstance(pid, int) or started is None or start_time(pid) != started:
                continue  # gone, or the PID now belongs to another process
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                stopped[pid] = f"{entry.get('name')} (pid {pid})"
        wait_until(
            lambda: all(start_time(pid) is None for pid in stopped),
            timeout,
            "left-over processes to exit",
        )
        self.path.unlink(missing_ok=True)
        return list(stopped.values())


class Process:
    """A child process with a log file, stopped on `stop()` or `kill()`.

    It dies with the process that started it (Linux). With a `record`, its PID
    is written down so a later run can stop it if it somehow survives."""

    def __init__(self, name: str, workdir: Path, record: ChildRecord | None = None):
        self.name = name
        self.workdir = workdir
        self.record = record
        self.proc: subprocess.Popen | None = None
        self.exit_expected = False

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def spawn(
        self, argv: list[str], env: dict[str, str] | None = None, pass_fds: tuple[int, ...] = ()
    ) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                pass_fds=pass_fds,
                start_new_session=True,  # Ctrl-C in a terminal reaches us, not it
                preexec_fn=functools.partial(_die_with_parent, os.getpid()),  # noqa: PLW1509
            )
        self.exit_expected = False
        if self.record:
            self.record.add(self.name, self.proc.pid)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 5) -> None:
        self.exit_expected = True
        if self.running:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """Die like a crashed server: no shutdown, no goodbye."""
        self.exit_expected = True
        if self.running:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def wait_accepting(self, port: int, timeout: float) -> None:
        """Until the process accepts TCP connections on `port`; stops it if it never does."""

        def accepting() -> bool:
            if not self.running:
                raise ServerError(f"{self.name} exited:\n{self.log_tail()}")
            try:
                socket.create_connection((LOOPBACK, port), timeout=0.2).close()
                return True
            except OSError:
                return False

        try:
            wait_until(accepting, timeout, f"{self.name} on :{port}", interval=0.05)
        except ServerError:
            self.stop()
            raise

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class RedisServer(Process):
    """A real redis-server: a primary, or a replica of another RedisServer."""

    def __init__(
        self,
        workdir: Path,
        *,
        name: str = "redis",
        port: int | None = None,
        replica_of: RedisServer | None = None,
        replication_port: int | None = None,
        password: str | None = None,
        tls: TlsFiles | None = None,
    ):
        """`replication_port`: reach the primary there instead (e.g. a delaying proxy)."""
        super().__init__(name, workdir)
        self.port = port or free_port()
        self.replica_of = replica_of
        self.replication_port = replication_port
        self.password = password
        self.tls = tls

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        auth = f"default:{self.password}@" if self.password else ""
        return f"{scheme}://{auth}{LOOPBACK}:{self.port}/0"

    def client(self, **kwargs) -> redis.Redis:
        options = {"socket_timeout": 10, "socket_connect_timeout": 2, **kwargs}
        if self.tls:
            options.setdefault("ssl_ca_certs", str(self.tls.ca))
        return redis.Redis.from_url(self.url, **options)

    def argv(self) -> list[str]:
        argv = [
            require_binary("redis-server"),
            "--bind",
            LOOPBACK,
            "--dir",
            str(self.workdir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
            "--repl-diskless-sync",
            "yes",
            "--repl-diskless-sync-delay",
            "0",
        ]
        if self.tls:
            argv += ["--port", "0", "--tls-port", str(self.port)]
            argv += ["--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key)]
            argv += ["--tls-ca-cert-file", str(self.tls.ca), "--tls-auth-clients", "no"]
            if self.replica_of:
                argv += ["--tls-replication", "yes"]
        else:
            argv += ["--port", str(self.port)]
        if self.password:
            argv += ["--requirepass", self.password, "--masterauth", self.password]
        if self.replica_of:
            upstream = self.replication_port or self.replica_of.port
            argv += ["--replicaof", LOOPBACK, str(upstream)]
        return argv

    def start(self, timeout: float = 10) -> RedisServer:
        self.spawn(self.argv())
        client = self.client(socket_timeout=1)
        try:
            wait_until(lambda: self._ready(client), timeout, f"{self.name} on :{self.port}")
        except ServerError as exc:
            self.stop()
            raise ServerError(f"{exc}\n{self.log_tail()}") from None
        finally:
            client.close()
        return self

    def _ready(self, client: redis.Redis) -> bool:
        if not self.running:
            raise ServerError(f"{self.name} exited: {self.log_tail()}")
        try:
            client.ping()
            if self.replica_of is None:
                return True
            return client.info("replication").get("master_link_status") == "up"
        except redis.RedisError:
            return False

    def wait_in_sync(self, timeout: float = 10) -> None:
        """Wait until this replica has applied everything its primary has written."""
        primary = self.replica_of.client()
        replica = self.client()
        try:
            target = primary.info("replication")["master_repl_offset"]

            def caught_up() -> bool:
                return replica.info("replication").get("slave_repl_offset", -1) >= target

            wait_until(caught_up, timeout, f"{self.name} to catch up")
        finally:
            primary.close()
            replica.close()


class MotoServer(Process):
    """A local AWS (moto server) for one service's tests or one simulated region."""

    def __init__(self, workdir: Path, *, name: str = "moto", port: int | None = None):
        super().__init__(name, workdir)
        self.port = port or free_port()

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def launch(self) -> None:
        """Start the process without waiting for it (see `wait_accepting`)."""
        argv = [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(self.port)]
        self.spawn(argv, env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"})

    def start(self, timeout: float = 30):
        self.launch()
        self.wait_accepting(self.port, timeout)
        return self


class MotoS3Server(MotoServer):
    """A local S3 (moto server). Point boto3 at it with `env()`."""

    def __init__(self, workdir: Path, *, port: int | None = None):
        super().__init__(workdir, name="moto-s3", port=port)

    def env(self) -> dict[str, str]:
        return local_s3_env(self.endpoint)


def local_s3_env(endpoint: str) -> dict[str, str]:
    """boto3 settings that send S3 calls to a local S3 with throwaway credentials."""
    return {
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",  # moto accepts any
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def local_s3_client(endpoint: str, region: str = "eu-west-1"):
    """A boto3 S3 client for one local S3 (a process may talk to several)."""
    return _local_client("s3", endpoint, region)


def local_sqs_client(endpoint: str, region: str = "eu-west-1"):
    """A boto3 SQS client for the same local server (moto serves every service on one port)."""
    return _local_client("sqs", endpoint, region)


def local_dynamodb_client(endpoint: str, region: str, service: str = "dynamodb"):
    """A boto3 client for one simulated region's local DynamoDB (or its "dynamodbstreams")."""
    return _local_client(service, endpoint, region)


def _local_client(service: str, endpoint: str, region: str):
    import boto3  # noqa: PLC0415 - the Redis helpers here do not need boto3

    env = local_s3_env(endpoint)
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def make_test_ca(directory: Path, hostname: str = LOOPBACK) -> TlsFiles:
    """A throwaway CA and a server certificate for `hostname`, made with openssl."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = directory / "ca.key", directory / "ca.crt"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "server.ext"
    kind = "IP" if hostname[0].isdigit() else "DNS"
    ext.write_text(f"subjectAltName={kind}:{hostname}\n")
    openssl = require_binary("openssl")

    def run(*args: object) -> None:
        subprocess.run([openssl, *map(str, args)], check=True, capture_output=True)

    new_key = ("-nodes", "-newkey", "rsa:2048")
    run(
        "req",
        "-x509",
        "-new",
        *new_key,
        "-keyout",
        ca_key,
        "-out",
        ca_cert,
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
    )
    run("req", "-new", *new_key, "-keyout", key, "-out", csr, "-subj", f"/CN={hostname}")
    run(
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        ca_cert,
        "-CAkey",
        ca_key,
        "-CAcreateserial",
        "-out",
        cert,
        "-days",
        "2",
        "-extfile",
        ext,
    )
    return TlsFiles(cert=cert, key=key, ca=ca_cert)
