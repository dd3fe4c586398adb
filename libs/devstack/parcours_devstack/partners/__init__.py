"""Local simulators of delivery partners (Chorus Pro, AP platforms, AS2, Peppol access points).

Each simulator is a FastAPI app following the partner's published API; `PartnerServer` serves
one with uvicorn inside the running event loop, on a free loopback port unless told one, so
tests and `make run` talk to it over real HTTP exactly as they would to the partner."""

from __future__ import annotations

import asyncio
import contextlib

import uvicorn
from fastapi import FastAPI

from parcours_devstack.smtp_sink import _EmbeddedServer, _host_port, _listen

__all__ = ["PartnerServer"]


class PartnerServer:
    """Serve one simulator app: `async with PartnerServer(app) as server: server.url`."""

    def __init__(self, app: FastAPI, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("PartnerServer is not started")
        return f"http://{_host_port(self.host, self.port)}"

    async def start(self) -> PartnerServer:
        """Listen now (the real port is known on return) and serve in the running loop."""
        if self._server is not None:
            raise RuntimeError("PartnerServer is already started")
        sock = _listen(self.host, self.port)
        self.port = sock.getsockname()[1]  # a restarted simulator answers where its clients already point
        config = uvicorn.Config(self.app, host=self.host, port=self.port, log_level="warning", lifespan="off")
        self._server = _EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        try:
            while not self._server.started:
                if self._task.done():
                    self._task.result()
                    raise RuntimeError("the simulator stopped while starting")
                await asyncio.sleep(0.01)
        except BaseException:
            sock.close()
            with contextlib.suppress(Exception):
                await self.stop()
            raise
        return self

    async def stop(self) -> None:
        server, task = self._server, self._task
        self._server = self._task = None
        if server is not None and task is not None:
            server.should_exit = True
            await task

    async def __aenter__(self) -> PartnerServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
