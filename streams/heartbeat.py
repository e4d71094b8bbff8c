"""Stream servers' heartbeat: the dispatcher dials only while at least one stream server is alive.

A call dialled while no stream server runs is answered into silence (its stream handshake is
refused). So every server process that serves streams publishes a row (`StreamServer`, one per
host:pid) every `STREAM_HEARTBEAT_SECONDS`, and `healthy` tells whether any row is fresher than
`STREAM_HEARTBEAT_EXPIRES_SECONDS`. A row, not a cache key: it works the same on SQLite and
PostgreSQL, with or without Redis, in every process.

daphne does not run ASGI lifespan. `Heartbeat` wraps the ASGI application and starts the beat when
daphne's Twisted reactor starts running (daphne installs the reactor before it imports the
application; a process that never runs it, such as a test, never beats). Under another server the
first connection it serves starts the beat; a scope without `server` is a test communicator's, not
a server's, and starts nothing. Web processes behind the proxy run `config.wsgi`, which does not beat:
they serve no stream.

A draining server takes no new stream: it withdraws its row at once (`config.server`), so that the
dispatcher holds dialling when it was the last one, instead of dialling into it until the row expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import socket
import sys

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from streams.models import StreamServer

log = logging.getLogger(__name__)


def publish(name: str, *, now: datetime.datetime | None = None) -> None:
    StreamServer.objects.update_or_create(name=name, defaults={"seen_at": now or timezone.now()})


def withdraw(name: str) -> None:
    StreamServer.objects.filter(name=name).delete()


def healthy(*, now: datetime.datetime | None = None) -> bool:
    """Whether some stream server published its heartbeat recently."""
    expires = datetime.timedelta(seconds=settings.STREAM_HEARTBEAT_EXPIRES_SECONDS)
    return StreamServer.objects.filter(seen_at__gte=(now or timezone.now()) - expires).exists()


def forget_stale(*, now: datetime.datetime | None = None) -> int:
    """Drop rows of servers gone for a day (each restart leaves one under a new pid)."""
    cutoff = (now or timezone.now()) - datetime.timedelta(days=1)
    return StreamServer.objects.filter(seen_at__lt=cutoff).delete()[0]


class Heartbeat:
    """ASGI wrapper: starts this process's heartbeat on the first connection a real server serves."""

    def __init__(self, application) -> None:
        self.application = application
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.task: asyncio.Task | None = None
        reactor = sys.modules.get("twisted.internet.reactor")
        if reactor is not None:
            # Startup hooks run before the asyncio loop does; callLater(0) runs inside it.
            reactor.callWhenRunning(reactor.callLater, 0, self.start)

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self.beat())

    async def __call__(self, scope, receive, send):
        if scope.get("server"):
            self.start()
        return await self.application(scope, receive, send)

    async def beat(self) -> None:
        publish_now = database_sync_to_async(publish, thread_sensitive=False)
        with contextlib.suppress(Exception):  # housekeeping only
            await database_sync_to_async(forget_stale, thread_sensitive=False)()
        while True:
            try:
                await publish_now(self.name)
            except Exception:  # a database hiccup must not end the heartbeat for good
                log.exception("stream server heartbeat failed")
            await asyncio.sleep(settings.STREAM_HEARTBEAT_SECONDS)

    async def withdraw(self) -> None:
        """Stop beating for good and delete this process's row (a draining server: config.server)."""
        if self.task is None:
            self.task = asyncio.get_running_loop().create_future()  # never started: start() stays a no-op
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        try:
            await database_sync_to_async(withdraw, thread_sensitive=False)(self.name)
        except Exception:  # the row expires by itself
            log.exception("stream server heartbeat: could not withdraw")
