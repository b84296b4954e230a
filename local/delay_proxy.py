"""A TCP proxy that delays every byte by a fixed one-way time, in both directions.

This kernel has no netem, so inter-region links (Redis replication between
regions) are simulated in user space: each chunk read is stamped and written
to the other side `delay` seconds later, in order. Throughput is not limited;
only latency is added. `cut()` drops every connection and refuses new ones,
like a broken inter-region link; `restore()` brings it back.
"""

from __future__ import annotations

import asyncio
import contextlib

from local.servers import LOOPBACK

CHUNK = 64 * 1024


class DelayProxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`target_port`, `delay` s each way."""

    def __init__(self, target_port: int, delay: float, port: int = 0):
        self.target_port = target_port
        self.delay = delay
        self.port = port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task] = set()

    async def start(self) -> DelayProxy:
        self._server = await asyncio.start_server(self._accept, LOOPBACK, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def cut(self) -> None:
        """Close the listener and every open connection."""
        if self._server:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def restore(self) -> None:
        if self._server is None:
            await self.start()

    stop = cut

    async def _accept(self, client_reader, client_writer) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                LOOPBACK, self.target_port
            )
        except OSError:
            client_writer.close()
            self._connections.discard(task)
            return
        try:
            await asyncio.gather(
                self._pipe(client_reader, upstream_writer),
                self._pipe(upstream_reader, client_writer),
            )
        except (asyncio.CancelledError, ConnectionError):
            pass
        finally:
            for writer in (client_writer, upstream_writer):
                writer.close()
            self._connections.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def read() -> None:
            while data := await reader.read(CHUNK):
                queue.put_nowait((loop.time() + self.delay, data))
            queue.put_nowait((loop.time() + self.delay, b""))

        async def write() -> None:
            while True:
                due, data = await queue.get()
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                if not data:
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()

        reading = asyncio.create_task(read())
        try:
            await write()
        finally:
            reading.cancel()
