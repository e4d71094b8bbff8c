"""WebSocket consumers: Exotel's streams (bidirectional, receive-only, a workspace's echo test, a
campaign's test call), the dashboard's live feed, a supervisor's line into one call and a test call
in the browser. Thin: they bind and authorise through `streams.services` and hand frames to a
`streams.runtime.Stream`.

A stream's session is ended and recorded (`Stream.finish`, `services.close_session`) on every way out
of its consumer: a close from either side, an error, a cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from autobahn.exception import Disconnected
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from campaigns.models import Call, Campaign
from exotel.protocol import CloseCode
from streams import drain, live, services, supervision
from streams.bots import make_bot
from streams.runtime import Binding, Stream
from tenancy.models import Membership, Role, workspaces_of

log = logging.getLogger(__name__)

ANNOUNCE_RETRY_DELAYS = (0.5, 1, 2, 4, 8)  # seconds; then the call's status callback is left to report it
_announcing: set[asyncio.Task] = set()  # held so that a pending announcement is not garbage-collected
MAX_MICROPHONE_BYTES = 48_000  # one second at 24 kHz: a browser sends a tenth of that at a time


def in_a_thread(work):
    """`database_sync_to_async` on any free worker thread, not the one thread Django's sync code
    shares: each stream's database work is self-contained, and when many calls connect at once
    their handshakes must not queue behind each other (Exotel gives a handshake 10 s)."""
    return database_sync_to_async(work, thread_sensitive=False)


class StreamConsumer(AsyncWebsocketConsumer):
    """A call's stream: `/streams/<call token>` (VoiceBot) or, receive-only, `/streams/<token>/listen`.

    It never receives from the channel layer (no per-socket channel, no second receive loop per
    call); it only publishes to the live view through `streams.live`."""

    receive_only = False
    stream: Stream | None = None

    async def __call__(self, scope, receive, send) -> None:
        # One source of messages and no channel layer: a plain loop instead of channels'
        # await_many_dispatch, which makes a task and an asyncio.wait per frame (18 µs each, measured).
        self.scope, self.base_send, self.channel_layer = scope, send, None
        try:
            with contextlib.suppress(StopConsumer):
                while True:
                    await self.dispatch(await receive())
        except Exception:
            if self.stream is not None:  # the caller must not be left on an open, deaf socket
                await self.stream.end("server_error", CloseCode.INTERNAL_ERROR)
            raise
        finally:
            await self._end_session(CloseCode.ABNORMAL)  # a no-op when `disconnect` has done it

    async def connect(self) -> None:
        if drain.live_streams.draining:
            await self.close()  # shutting down: refused, so that the call goes to another instance
            return
        binding = await in_a_thread(self.bind)(self._header(b"authorization"))
        if binding is None:
            await self.close()  # before accept: the handshake is refused (403) and nothing is kept
            return
        self.stream = Stream(binding, send=self._send_text, close=self.close, started=self._started,
                             opted_out=in_a_thread(services.record_opt_out), make_bot=make_bot)
        drain.live_streams.add(self.stream)
        await self.accept()

    def bind(self, authorization: bytes | None) -> Binding | None:
        token = self.scope["url_route"]["kwargs"]["token"]
        return services.bind_call(token, receive_only=self.receive_only, authorization=authorization)

    async def dispatch(self, message: dict) -> None:
        # The media hot path: channels' dispatch would hop to a thread (aclose_old_connections) before
        # every frame; frames never touch the database, so they skip it (DESIGN.md, measured).
        if message["type"] == "websocket.receive":
            if self.stream is not None:
                await self.stream.receive(message.get("text"))
            return
        await super().dispatch(message)

    async def disconnect(self, code: int) -> None:
        await self._end_session(code)

    async def _end_session(self, code: int) -> None:
        if self.stream is None or self.stream.finished:
            return
        try:
            await self.stream.finish(code)
        finally:
            try:
                await in_a_thread(services.close_session)(self.stream)
            finally:
                drain.live_streams.discard(self.stream)  # saved (or failed for good): no drain waits for it

    async def _started(self, start):
        binding = self.stream.binding
        started = await in_a_thread(services.start_session)(binding, start)
        if binding.call_id is not None:
            task = asyncio.ensure_future(announce_start(binding.call_id))
            _announcing.add(task)
            task.add_done_callback(_announcing.discard)
        return started

    async def _send_text(self, text: str) -> None:
        try:
            await self.send(text_data=text)
        except (Disconnected, OSError):
            # The peer closed as we sent (daphne raises Disconnected, the ASGI spec an OSError); its
            # disconnect follows and ends the stream: a hang-up, not a server error.
            log.info("stream %s: the peer closed while we sent", self.stream.sid)

    def _header(self, name: bytes) -> bytes | None:
        return dict(self.scope.get("headers", [])).get(name)


async def announce_start(call_id: int) -> None:
    """`services.announce_start`, retried while the broker is unreachable, beside the call."""
    for delay in (*ANNOUNCE_RETRY_DELAYS, None):
        try:
            await in_a_thread(services.announce_start)(call_id)
            return
        except Exception as exc:
            if delay is None:
                log.error("call %s: could not announce its stream's start (%s); giving up", call_id, exc)
                return
            log.warning("call %s: could not announce its stream's start (%s); retrying in %s s", call_id, exc, delay)
            await asyncio.sleep(delay)


class ListenConsumer(StreamConsumer):
    """The Stream applet's receive-only endpoint: records and monitors, never sends a frame."""

    receive_only = True


class EchoTestConsumer(StreamConsumer):
    """A workspace's echo endpoint, `/streams/test/<signed token>`, for checking an applet or tunnel."""

    def bind(self, authorization: bytes | None) -> Binding | None:
        return services.bind_test(self.scope["url_route"]["kwargs"]["token"], authorization=authorization)


class TestCallConsumer(StreamConsumer):
    """A campaign's test call placed through Exotel, `/streams/test-call/<signed token>`: its bot, no call row."""

    def bind(self, authorization: bytes | None) -> Binding | None:
        return services.bind_test_call(self.scope["url_route"]["kwargs"]["token"], authorization=authorization)


class BrowserTestCallConsumer(StreamConsumer):
    """`/live/campaigns/<id>/test-call`: the campaign's bot, with an operator's browser in Exotel's
    part (static/js/testcall.js): the same frames, the microphone as the caller's audio."""

    def bind(self, authorization: bytes | None) -> Binding | None:
        return services.bind_browser_test_call(self.scope["url_route"]["kwargs"]["campaign_id"],
                                               user=self.scope.get("user"))


class LiveConsumer(AsyncWebsocketConsumer):
    """`/live/campaigns/<id>`: the campaign's live streams, for members of its workspace only.

    Message format: `streams.live`'s docstring."""

    campaign_id: int | None = None

    async def connect(self) -> None:
        campaign_id = self.scope["url_route"]["kwargs"]["campaign_id"]
        if not await database_sync_to_async(self.may_watch)(campaign_id):
            await self.close()
            return
        self.campaign_id = campaign_id
        await self.channel_layer.group_add(live.group_name(campaign_id), self.channel_name)
        await live.add_watcher(campaign_id)
        await self.accept()

    def may_watch(self, campaign_id: int) -> bool:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return False
        # Filtered in the query: another workspace's campaign looks exactly like a missing one.
        workspaces = Membership.objects.filter(user=user).values("workspace_id")
        return Campaign.objects.filter(pk=campaign_id, workspace_id__in=workspaces).exists()

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # A server that stops cancels its feeds without a disconnect: uncounted here, or every
            # process's streams would go on publishing to a watcher who left (the count is shared).
            await self._stop_watching()

    async def disconnect(self, code: int) -> None:
        await self._stop_watching()

    async def _stop_watching(self) -> None:
        campaign_id, self.campaign_id = self.campaign_id, None
        if campaign_id is None:
            return
        await self.channel_layer.group_discard(live.group_name(campaign_id), self.channel_name)
        await live.remove_watcher(campaign_id)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        pass  # the feed is one-way; whatever a browser sends is ignored

    async def live_message(self, message: dict) -> None:
        await self.send(text_data=json.dumps(message["data"]))


class SuperviseConsumer(AsyncWebsocketConsumer):
    """`/live/calls/<id>`: a supervisor listens to a live call, whispers to its bot, takes it over.

    Operators and above of the call's workspace only. Text frames from the browser are commands
    ({"action": "whisper", "text": …, "step": …}, {"action": "take_over"}, {"action": "hand_back"}),
    binary frames the microphone's audio while holding the line; the wire formats towards the
    browser are `streams.supervision`'s."""

    call_id: int | None = None
    user: dict | None = None

    async def connect(self) -> None:
        call_id = self.scope["url_route"]["kwargs"]["call_id"]
        self.user = await database_sync_to_async(self.supervisor)(call_id)
        if self.user is None:
            await self.close()  # refused at the handshake (403): another workspace's call looks missing
            return
        self.call_id = call_id
        await self.channel_layer.group_add(supervision.audience_group(call_id), self.channel_name)
        await supervision.count_listener(call_id, +1)
        await self.accept()
        await self._control("join")

    def supervisor(self, call_id: int) -> dict | None:
        """The signed-in user, if they may supervise this call now: an operator or above of its
        workspace, the call live (filtered in the query)."""
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return None
        workspaces = workspaces_of(user, at_least=Role.OPERATOR)
        if not Call.objects.filter(pk=call_id, workspace_id__in=workspaces, state__in=Call.LIVE_STATES).exists():
            return None
        return {"user": user.pk, "by": user.email or user.get_username()}

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if bytes_data is not None:
            if len(bytes_data) % 2 == 0 and 0 < len(bytes_data) <= MAX_MICROPHONE_BYTES:
                await self._control("audio", pcm=bytes_data)
            return
        try:
            command = json.loads(text_data)
        except ValueError:
            command = None
        action = command.get("action") if isinstance(command, dict) else None
        if action not in ("whisper", "take_over", "hand_back"):
            await self.send(text_data=json.dumps({"type": "refused", "action": str(action), "reason": "Unknown command."}))
            return
        detail = {}
        if action == "whisper":
            detail = {"text": str(command.get("text", ""))[:supervision.WHISPER_MAX],
                      "step": str(command.get("step", ""))[:100]}
        await self._control(action, **detail)

    async def _control(self, action: str, **detail) -> None:
        await self.channel_layer.group_send(supervision.control_group(self.call_id), {
            "type": "supervise.control", "call": self.call_id, "action": action, "channel": self.channel_name,
            **self.user, **detail})

    async def supervise_opened(self, message: dict) -> None:
        await self._control("join")  # the call's stream opened after this supervisor joined

    async def supervise_audio(self, message: dict) -> None:
        await self.send(bytes_data=message["audio"])

    async def supervise_state(self, message: dict) -> None:
        await self.send(text_data=json.dumps(message["data"]))

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._leave()  # a stopping server cancels consumers without a disconnect

    async def disconnect(self, code: int) -> None:
        await self._leave()

    async def _leave(self) -> None:
        if self.call_id is None:
            return
        await self._control("leave")  # a take-over this supervisor held goes back to the bot
        call_id, self.call_id = self.call_id, None
        await self.channel_layer.group_discard(supervision.audience_group(call_id), self.channel_name)
        await supervision.count_listener(call_id, -1)
