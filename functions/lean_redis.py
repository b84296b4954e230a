"""A minimal Redis client for the redirect and health paths.

Why not redis-py here: importing redis-py 8 costs ~230 ms on this hardware, more
than everything else a cold redirect does together (a bare interpreter starts
in ~12 ms). This client is a socket (TLS when the URL says `rediss://`) plus
hiredis' C reply parser and command packer (~2 ms to import), and does only
what the hot path needs: AUTH, SELECT, and single commands (GET, HGETALL,
INFO, PING). The sync and admin paths keep redis-py.

Failure model: any socket error, timeout or protocol surprise closes the
connection and raises RedisUnavailable; the next call reconnects. Error
replies (e.g. WRONGPASS) raise RedisReplyError and also drop the connection if
they happen during the handshake.
"""

from __future__ import annotations

import socket
from urllib.parse import unquote, urlsplit

import hiredis

from functions.store import StoreUnavailable

DEFAULT_PORT = 6379
RECV_BYTES = 65536


class RedisUnavailable(StoreUnavailable):
    """Redis could not be reached or did not answer in time."""


class RedisReplyError(Exception):
    """Redis answered with an error reply."""


class LeanRedis:
    """One connection, opened lazily, reopened after any failure.

    connect_timeout and read_timeout are in seconds; `ca_file` verifies a
    private CA (tests); by default TLS verifies against the system trust store,
    as ElastiCache's certificates are publicly trusted.
    """

    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        connect_timeout: float = 0.25,
        read_timeout: float = 0.1,
        ca_file: str | None = None,
    ):
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ValueError("REDIS_URL must look like redis[s]://[user:password@]host[:port][/db]")
        self.host = parts.hostname
        self.port = parts.port or DEFAULT_PORT
        self.tls = parts.scheme == "rediss"
        self.username = unquote(parts.username) if parts.username else None
        self.password = password or (unquote(parts.password) if parts.password else None)
        self.db = int(parts.path.strip("/") or 0)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.ca_file = ca_file
        self._sock: socket.socket | None = None
        self._reader: hiredis.Reader | None = None

    def execute(self, *args: str | bytes):
        """Send one command and return its reply (bytes, list, int, None)."""
        if self._sock is None:
            self._connect()
        return self._roundtrip(args)

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def _connect(self) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), self.connect_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls:
                import ssl  # noqa: PLC0415 - ~20 ms; only TLS connections pay it

                context = ssl.create_default_context(cafile=self.ca_file)
                sock = context.wrap_socket(sock, server_hostname=self.host)
        except OSError as exc:
            raise RedisUnavailable(f"cannot connect to {self.host}:{self.port}: {exc}") from None
        sock.settimeout(self.read_timeout)
        self._sock = sock
        self._reader = hiredis.Reader(replyError=RedisReplyError)
        try:
            if self.password:
                credentials = (self.username, self.password) if self.username else (self.password,)
                self._roundtrip(("AUTH", *credentials))
            if self.db:
                self._roundtrip(("SELECT", str(self.db)))
        except RedisReplyError:
            self.close()
            raise

    def _roundtrip(self, args):
        sock, reader = self._sock, self._reader
        try:
            sock.sendall(hiredis.pack_command(args))
            reply = reader.gets()
            while reply is False:
                data = sock.recv(RECV_BYTES)
                if not data:
                    raise ConnectionError("connection closed by the server")
                reader.feed(data)
                reply = reader.gets()
        except (OSError, hiredis.ProtocolError) as exc:
            self.close()
            raise RedisUnavailable(
                f"{self.host}:{self.port}: {exc or type(exc).__name__}"
            ) from None
        if isinstance(reply, RedisReplyError):
            raise reply
        return reply
