"""The HTTP server: Starlette on uvicorn, inside the bot's own event loop (PTB's `customwebhookbot` shape).

`GET /healthz` (the loop answers), `GET /readyz` (see `readiness`), `GET /metrics` (Prometheus text) and, in
webhook mode, `POST <path of TELEGRAM_WEBHOOK_URL>`. The bot owns SIGINT/SIGTERM (it drains its jobs first), so
uvicorn is kept from installing its own signal handlers and is stopped by the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..metrics import Metrics
from . import ServeError
from .readiness import Readiness
from .webhook import WebhookEndpoint

log = logging.getLogger(__name__)

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def build_app(readiness: Readiness, metrics: Metrics, webhook: tuple[str, WebhookEndpoint] | None) -> Starlette:
    async def healthz(_: Request) -> Response:
        return JSONResponse({"ok": True})

    async def readyz(_: Request) -> Response:
        reason = await readiness.reason()
        if reason:
            return JSONResponse({"ready": False, "reason": reason}, status_code=503)
        return JSONResponse({"ready": True})

    async def exposition(_: Request) -> Response:
        body, content_type = metrics.exposition()
        return Response(body, headers={"Content-Type": content_type})

    routes = [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", exposition)]
    if webhook is not None:
        path, endpoint = webhook
        routes.append(Route(path, endpoint.handle, methods=["POST"]))
    return Starlette(routes=routes)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Signals stay the bot's: it stops this server itself, after it stopped taking updates."""
        yield


class HttpServer:
    def __init__(self, app: Starlette, host: str, port: int) -> None:
        self._app, self.host, self.port = app, host, port
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen (a taken port fails here, with one line) and serve in the background."""
        try:
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            sock = socket.create_server((self.host, self.port), family=family)
        except OSError as exc:
            raise ServeError(
                f"cannot listen on {self.host}:{self.port} (HTTP_HOST/HTTP_PORT): {exc.strerror or exc}"
            ) from None
        config = uvicorn.Config(
            self._app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=5
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="http-server")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT
        while not self._server.started and not self._task.done() and loop.time() < deadline:
            await asyncio.sleep(0.01)
        if not self._server.started:
            await self.stop()
            raise ServeError(f"the HTTP server on {self.host}:{self.port} did not start")
        log.info("HTTP on %s:%d: /healthz /readyz /metrics", self.host, self.port)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._task, STOP_TIMEOUT)
        self._server = self._task = None
