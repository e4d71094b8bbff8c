"""Live view of a campaign's streams, fanned out over the channel layer.

Every stream of a campaign call publishes to the group `live.campaign.<id>`; `LiveConsumer`
(route `/live/campaigns/<campaign id>`, session-authenticated, members of the campaign's workspace
only) forwards each message to the browser as one JSON text frame:

    {"type": "state", "stream": 41, "call": 7, "phone": "+9198…", "state": "started",
     "bot": "script", "at": 1764211200.5}
        state is one of connected, started, stopped; a stopped message adds "reason"
    {"type": "level", "stream": 41, "call": 7, "dbfs": -23.4, "at": …}
        the caller's audio level (RMS, dBFS, -120 is silence), at most twice a second per stream
    {"type": "event", "stream": 41, "call": 7, "event": "dtmf", "detail": "5", "at": …}
        event is one of dtmf, mark, clear, barge_in (detail: ms from loud frame to clear),
        say (detail: prompt name), hangup, bad_frame (detail: the reason)

`stream` is the StreamSession id (0 until the row written after the `start` event exists: levels
and events may come first), `call` the Call id, `at` a Unix time.

No work is done when nobody watches: watchers are counted in the cache (`live.watchers.<id>`,
shared by all processes when the cache is Redis), and a stream asks at most once a second per
campaign and process whether anyone watches, before computing a level or sending anything.

The live view is a side show: when the cache or the channel layer (Redis) is unreachable, it goes
quiet and logs why, and nothing here raises into a stream.
"""

from __future__ import annotations

import contextlib
import logging
import time

from channels.layers import get_channel_layer
from django.core.cache import cache

from exotel.audio import rms_dbfs

log = logging.getLogger(__name__)

CHECK_EVERY = 1.0
LEVEL_EVERY = 0.5

_watched: dict[int, tuple[float, bool]] = {}  # campaign id -> (checked at, anyone watching), per process


def group_name(campaign_id: int) -> str:
    return f"live.campaign.{campaign_id}"


def watchers_key(campaign_id: int) -> str:
    return f"live.watchers.{campaign_id}"


async def add_watcher(campaign_id: int) -> None:
    key = watchers_key(campaign_id)
    try:
        await cache.aadd(key, 0, timeout=None)
        await cache.aincr(key)
    except Exception as exc:
        log.warning("live view of campaign %s: could not count a watcher (%s)", campaign_id, exc)
    _watched.pop(campaign_id, None)


async def remove_watcher(campaign_id: int) -> None:
    try:
        with contextlib.suppress(ValueError):  # the cache lost the key (restart, eviction): nothing to undo
            await cache.adecr(watchers_key(campaign_id))
    except Exception as exc:
        log.warning("live view of campaign %s: could not uncount a watcher (%s)", campaign_id, exc)


async def is_watched(campaign_id: int) -> bool:
    now = time.monotonic()
    checked = _watched.get(campaign_id)
    if checked and now - checked[0] < CHECK_EVERY:
        return checked[1]
    # Mark the check before awaiting, so the other streams of this campaign do not all ask at once.
    _watched[campaign_id] = (now, checked[1] if checked else False)
    try:
        watched = (await cache.aget(watchers_key(campaign_id), 0) or 0) > 0
    except Exception as exc:
        log.warning("live view of campaign %s: cannot tell who watches (%s); quiet for now", campaign_id, exc)
        watched = False
    _watched[campaign_id] = (now, watched)
    return watched


class Feed:
    """One stream's publisher. A stream without a campaign (the test endpoint) publishes nothing."""

    def __init__(self, *, campaign_id: int | None, call_id: int | None, phone: str = "", bot: str = "") -> None:
        self.campaign_id = campaign_id
        self.call_id = call_id
        self.phone = phone
        self.bot = bot
        self.stream_id = 0
        self._level_at = 0.0

    async def state(self, state: str, **extra) -> None:
        await self._publish({"type": "state", "state": state, "phone": self.phone, "bot": self.bot, **extra})

    async def event(self, event: str, detail: str | int = "") -> None:
        await self._publish({"type": "event", "event": event, "detail": detail})

    async def level(self, pcm: bytes) -> None:
        now = time.monotonic()
        if self.campaign_id is None or now - self._level_at < LEVEL_EVERY:
            return
        self._level_at = now
        if await is_watched(self.campaign_id):
            await self._send({"type": "level", "dbfs": round(rms_dbfs(pcm), 1)})

    async def _publish(self, data: dict) -> None:
        if self.campaign_id is not None and await is_watched(self.campaign_id):
            await self._send(data)

    async def _send(self, data: dict) -> None:
        data.update(stream=self.stream_id, call=self.call_id, at=round(time.time(), 3))
        try:
            await get_channel_layer().group_send(group_name(self.campaign_id), {"type": "live.message", "data": data})
        except Exception as exc:
            log.warning("live view of campaign %s: could not publish (%s)", self.campaign_id, exc)
