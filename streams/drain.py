"""Graceful shutdown of the stream server: the process's live streams, and the drain.

On SIGTERM (`config.server`) the process stops taking new streams, so that Exotel's next calls land
on another instance (its listening socket is closed and its heartbeat stopped; a handshake that got
in before is refused), lets the live calls run for up to
`STREAM_DRAIN_SECONDS`, then ends those still live with the reference's "going away" (server
restart) and waits a moment for their sessions to be saved. A rolling restart thus cuts no call
that ends within the drain time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from exotel.protocol import CloseCode

if TYPE_CHECKING:
    from streams.runtime import Stream

log = logging.getLogger(__name__)

CLOSE_GRACE_SECONDS = 10.0  # for the streams ended at the drain's end to close and save their sessions
_POLL_SECONDS = 0.1  # shutdown only: polling keeps this free of per-loop state


class LiveStreams:
    """The streams of this process, from the handshake until their session is saved."""

    def __init__(self) -> None:
        self._streams: set[Stream] = set()
        self.draining = False

    def __len__(self) -> int:
        return len(self._streams)

    def add(self, stream: Stream) -> None:
        self._streams.add(stream)

    def discard(self, stream: Stream) -> None:
        self._streams.discard(stream)

    async def drain(self, seconds: float) -> None:
        """Refuse new streams, wait up to `seconds` for the live ones to end, then end the rest."""
        self.draining = True
        log.warning("shutting down: %d live streams have up to %g s to end", len(self), seconds)
        await self._until_none_left(seconds)
        if self._streams:
            log.warning("shutting down: ending %d streams still live after %g s", len(self), seconds)
            for stream in list(self._streams):
                try:
                    await stream.end("server_shutdown", CloseCode.GOING_AWAY)
                except Exception:  # one stream's failure must not keep the others open
                    log.exception("shutting down: stream %s could not be ended", stream.sid)
            await self._until_none_left(CLOSE_GRACE_SECONDS)
        if self._streams:
            log.error("shutting down: %d streams did not close", len(self))

    async def _until_none_left(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self._streams and time.monotonic() < deadline:
            await asyncio.sleep(_POLL_SECONDS)


live_streams = LiveStreams()
