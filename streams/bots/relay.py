"""The relay bot: the customer's own bot (a WebSocket speaking this same AgentStream protocol) talks
to the caller through us, while we keep recording and counting.

Settings (`Campaign.bot_settings`): `{"url": "wss://bot.example.com/agent", "fallback_prompt": "sorry"}`;
the campaign's `relay_token`, if set, goes in the handshake as `Authorization: Bearer <token>`.
We play Exotel's part towards the external bot: `connected`, then `start` with our stream SID and
the call's variables (the contact's, plus `name` and `phone`) as custom parameters, then the
caller's media, DTMF, the marks Exotel returns, and `stop`. The external bot's media is re-chunked
and paced like any bot's audio, its marks and clears go to Exotel in order.

One message of ours goes beyond Exotel's protocol: the external bot marks the caller as opted out
(they asked never to be called again) with

    {"event": "opt_out", "stream_sid": "MZ…", "opt_out": {"reason": "asked to stop calling"}}

(`opt_out` and its `reason`, up to 150 characters, are optional). The caller's number goes on the
workspace's do-not-call list at once, source "relay", for every campaign; the call goes on (say
goodbye, then close the socket) and its disposition becomes "opted_out" unless the call already has
one. Repeating the message changes nothing.

Two more tell us what was said, for the call's page and the CRM's webhook:

    {"event": "transcript", "stream_sid": "MZ…", "transcript": {"speaker": "caller", "text": "…"}}
    {"event": "summary", "stream_sid": "MZ…", "summary": {"text": "Renewal agreed for March."}}

`speaker` is "caller" or "bot"; lines keep their order (at most LINES_MAX), a later summary replaces
an earlier one. They are stored on the call when its stream ends.

A supervisor watching the call (`streams.supervision`) reaches the external bot with

    {"event": "supervisor", "sequence_number": 12, "stream_sid": "MZ…",
     "supervisor": {"kind": "whisper", "text": "offer the gold plan", "step": ""}}

`kind` is `whisper` (a hint; `step` a name the supervisor chose, if any), `take_over` (the
supervisor speaks to the caller: the bot's audio is dropped until `hand_back`) or `hand_back`.

The external bot hands the caller to a person of the campaign's agent group with

    {"event": "transfer", "stream_sid": "MZ…", "transfer": {"message": "hold", "whisper": "Wants to upgrade"}}

(`transfer` and both fields optional), the same fields as the script's `transfer` step: `message`
names a prompt of the workspace played to the caller first, `whisper` (up to 300 characters, say
what the caller said and wants) is said to the agent after the call's summary. When the transfer
is possible we end the external bot's part: it gets `stop` and its socket is closed, and the hold,
the fallback and the call-back offer follow (streams/handover.py); when it is not (no agent group,
Voice AI mode) nothing changes and the external bot gets a `mark` named `transfer-refused`.
The external bot may close its socket as soon as it has asked: the hand-over holds the call (if the
transfer is then refused, the call ends as a drop, below).

If the external bot cannot be reached within `CONNECT_TIMEOUT`, or drops before the call ends, the
caller hears the fallback prompt (if the workspace has it), the call is hung up, and its
disposition says so: `relay_unreachable` or `relay_dropped`.

Both directions are bounded: the external bot's audio waits for room in the stream's outbox
(`streams.playback.BACKLOG_MS`), and caller audio it does not read in time is dropped (`UNSENT_LIMIT`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import ssl
from urllib.parse import urlsplit

import websockets
import websockets.sync.client
from django.core.exceptions import ValidationError

from campaigns.models import DoNotCall
from exotel import protocol
from streams import handover, prompts
from streams.handover import in_a_thread
from streams.runtime import Bot
from tenancy import weburls

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
# Caller audio written to the external bot and not yet taken by it. Past this the bot reads slower
# than the caller speaks: later audio is dropped (the bot sees the gap in chunk numbers) rather than
# queued without bound or waited for, which would stall this call's stream (recording, DTMF, stop).
UNSENT_LIMIT = 256 * 1024
FALLBACK_MARK = "relay-fallback"
OPT_OUT_REASON_MAX = 150
WHISPER_MAX = 300
TRANSFER_REFUSED_MARK = "transfer-refused"
LINES_MAX, LINE_MAX, SUMMARY_MAX = 1000, 2000, 5000


def validate_relay(spec: dict) -> None:
    """Raise ValidationError unless `spec` is {"url": "ws(s)://…", "fallback_prompt": optional name}."""
    if not isinstance(spec, dict) or set(spec) - {"url", "fallback_prompt"}:
        raise ValidationError('Relay settings are an object with "url" and optionally "fallback_prompt".')
    url = spec.get("url")
    try:  # what can be told without DNS; the address it resolves to is checked at each connect
        weburls.check_outbound(url if isinstance(url, str) else "", weburls.STREAM, resolve=False)
    except weburls.Refused as exc:
        raise ValidationError(f"The relay url must be a ws:// or wss:// address of your bot: {exc}") from None
    prompt = spec.get("fallback_prompt", "")
    if not isinstance(prompt, str):
        raise ValidationError("fallback_prompt is the name of a prompt.")


TOKEN_REFUSED = "A token is printable ASCII without spaces, as an HTTP header carries it."


def check_token(token: str) -> None:
    """ValidationError unless `token` can travel in a header (no spaces, line breaks or other controls)."""
    if any(not "!" <= char <= "~" for char in token):
        raise ValidationError(TOKEN_REFUSED)


def authorization(token: str) -> dict[str, str]:
    """The handshake's headers for the campaign's relay token (none without one)."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def test_connection(url: str, token: str = "") -> tuple[bool, str]:
    """Open a WebSocket to a relay URL from this server as a call would (the outbound rules, the checked
    address, the token) and close it: (True, what answered) or (False, why not, in words the operator
    can act on)."""
    try:
        check_token(token)
        address, port = weburls.check_outbound(url, weburls.STREAM)
    except ValidationError:
        return False, TOKEN_REFUSED
    except weburls.Refused as exc:
        return False, f"Refused by the outbound rules: {exc}"
    where = f"{urlsplit(url).hostname}:{port}"
    try:
        with socket.create_connection((address, port), timeout=CONNECT_TIMEOUT) as sock:
            # As websockets does with a socket of its own: open_timeout bounds the handshake, and a timeout
            # left on the socket would end its reading thread first, passing for a bad handshake.
            sock.settimeout(None)
            with websockets.sync.client.connect(url, sock=sock, proxy=None, open_timeout=CONNECT_TIMEOUT,
                                                close_timeout=1, additional_headers=authorization(token)):
                pass
    except ConnectionRefusedError:
        return False, f"Connection refused: nothing accepts connections at {where}."
    except TimeoutError:
        return False, f"Timed out: {where} did not complete the handshake within {CONNECT_TIMEOUT:g} s."
    except ssl.SSLCertVerificationError as exc:
        return False, f"TLS failed: the certificate of {where} is not trusted ({exc.verify_message})."
    except ssl.SSLError as exc:
        return False, f"TLS failed with {where}: {exc.reason or exc}."
    except websockets.InvalidStatus as exc:
        return False, (f"Bad handshake: {where} answered HTTP {exc.response.status_code} instead of accepting "
                       "the WebSocket.")
    except websockets.InvalidHandshake as exc:
        return False, f"Bad handshake: {where} is not a WebSocket server ({exc})."
    except OSError as exc:
        return False, f"Could not connect to {where}: {exc.strerror or exc}."
    return True, f"Connected: {where} accepted the WebSocket handshake."


class RelayBot(Bot):
    def __init__(self, stream) -> None:
        super().__init__(stream)
        self.url = stream.binding.bot_settings.get("url", "")
        self.fallback = stream.binding.bot_settings.get("fallback_prompt", "")
        self._ws = None
        self._seq = 0
        self._chunk = 0
        self._media_ms = 0.0
        self._stopping = False
        self.dropped_chunks = 0
        self._fallback_done: asyncio.Future | None = None
        self._keys: asyncio.Queue | None = None  # set while a transfer holds the call

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    async def on_start(self) -> None:
        self.stream.spawn(self._run())

    async def _run(self) -> None:
        start, sid = self.stream.start, self.stream.sid
        params = {str(k): str(v) for k, v in {**self.stream.binding.variables, **start.custom_parameters}.items()}
        try:
            self._ws = await asyncio.wait_for(self._connect(), CONNECT_TIMEOUT)
            await self._ws.send(protocol.exotel_connected_frame())
            await self._ws.send(protocol.exotel_start_frame(
                self._next(), stream_sid=sid, call_sid=start.call_sid, account_sid=start.account_sid,
                from_=start.from_, to=start.to, custom_parameters=params, sample_rate=self.stream.rate))
        except (OSError, TimeoutError, ValueError, websockets.WebSocketException) as exc:
            log.warning("stream %s: relay to %s failed: %s", sid, self.url, exc)
            self._ws = None
            await self._fail("relay_unreachable")
            return
        try:
            async for text in self._ws:
                await self._from_bot(text)
        except websockets.ConnectionClosed:
            pass
        if self._stopping:
            return
        self._ws = None
        if self._keys is not None:  # it asked for a person and left: the hand-over holds the call
            log.info("stream %s: relay bot at %s left during its transfer", sid, self.url)
            return
        log.warning("stream %s: relay bot at %s dropped", sid, self.url)
        await self._fail("relay_dropped")

    async def _connect(self):
        """Connect to the address that was checked, not the name again: no rebinding, no redirect elsewhere."""
        address, port = await asyncio.to_thread(weburls.check_outbound, self.url, weburls.STREAM)
        return await websockets.connect(self.url, host=address, port=port, proxy=None,
                                        additional_headers=authorization(self.stream.binding.relay_token),
                                        max_size=2**20, close_timeout=2, write_limit=2 * UNSENT_LIMIT)

    async def _from_bot(self, text: str | bytes) -> None:
        try:
            event = protocol.parse_bot_frame(text)
        except protocol.ProtocolError as exc:
            log.info("stream %s: relay bot sent a bad frame: %s", self.stream.sid, exc)
            return
        if isinstance(event, protocol.BotMedia):
            await self.stream.stream_audio(event.payload)
        elif isinstance(event, protocol.BotMark):
            await self.stream.mark(event.name)
        elif isinstance(event, protocol.BotClear):
            await self.stream.clear()
        elif isinstance(event, protocol.Unknown) and event.event == "opt_out":
            await self._opt_out(event.raw.get("opt_out"))
        elif isinstance(event, protocol.Unknown) and event.event == "transfer" and self._keys is None:
            self._keys = asyncio.Queue()  # from now on the caller's keys are the hand-over's, not the external bot's
            self.stream.spawn(self._transfer(event.raw.get("transfer")))
        elif isinstance(event, protocol.Unknown) and event.event == "transcript":
            self._transcribe(event.raw.get("transcript"))
        elif isinstance(event, protocol.Unknown) and event.event == "summary":
            detail = event.raw.get("summary")
            if isinstance(detail, dict) and isinstance(detail.get("text"), str):
                self.summary = detail["text"][:SUMMARY_MAX]

    async def _transfer(self, detail) -> None:
        detail = detail if isinstance(detail, dict) else {}
        message, whisper = detail.get("message"), detail.get("whisper")
        if isinstance(message, str) and message:
            await self._play_named(message)
        whisper = whisper[:WHISPER_MAX] if isinstance(whisper, str) else ""
        if await handover.transfer(self, whisper=whisper, keys=self._keys):
            return
        self._keys = None
        if self._ws is None:  # the bot left after asking: nobody is left to talk to the caller
            await self._fail("relay_dropped")
            return
        await self._forward(protocol.exotel_mark_frame(self._next(), self.stream.sid, TRANSFER_REFUSED_MARK))

    async def _play_named(self, name: str) -> None:
        if name not in self.stream.prompts:
            loaded = await in_a_thread(prompts.load)(self.stream.binding.workspace_id, {name}, self.stream.rate)
            self.stream.prompts.update(loaded)
        if name in self.stream.prompts:
            await self.stream.clear()  # whatever the external bot was saying gives way
            await self.stream.play_prompt(name)
        else:
            log.info("stream %s: the relay's transfer names no prompt %r", self.stream.sid, name)

    def _transcribe(self, line) -> None:
        # Kept in memory and stored once at the end, as the rest of the call's record (no write per message).
        if not isinstance(line, dict) or not isinstance(line.get("text"), str) or len(self.transcript) >= LINES_MAX:
            log.info("stream %s: relay bot sent a transcript line that is not {speaker, text}", self.stream.sid)
            return
        speaker = line.get("speaker") if line.get("speaker") in ("caller", "bot") else "bot"
        self.transcript.append([speaker, line["text"][:LINE_MAX]])

    async def _opt_out(self, detail) -> None:
        reason = detail.get("reason") if isinstance(detail, dict) else None
        reason = reason[:OPT_OUT_REASON_MAX] if isinstance(reason, str) and reason.strip() else "your bot's opt_out"
        self.disposition = self.disposition or "opted_out"
        await self.stream.opt_out(DoNotCall.Source.RELAY, reason)

    async def _fail(self, disposition: str) -> None:
        self.disposition = disposition
        if self.fallback in self.stream.prompts:
            pcm, rate = self.stream.prompts[self.fallback]
            self._fallback_done = asyncio.get_running_loop().create_future()
            await self.stream.play_prompt(self.fallback)
            await self.stream.mark(FALLBACK_MARK)
            await asyncio.wait([self._fallback_done], timeout=len(pcm) / 2 / rate + 5)
        await self.stream.hang_up()

    async def _forward(self, frame: str) -> None:
        if self._ws is None:
            return  # not connected (yet, or any more): the caller's audio is still recorded
        with contextlib.suppress(websockets.ConnectionClosed):  # the reading side notices and fails over
            await self._ws.send(frame)

    async def on_audio(self, pcm: bytes) -> None:
        if self._ws is None:
            return
        self._chunk += 1
        timestamp = round(self._media_ms)
        self._media_ms += len(pcm) / 2 / self.stream.rate * 1000
        if self._ws.transport.get_write_buffer_size() > UNSENT_LIMIT:
            if not self.dropped_chunks:
                log.warning("stream %s: relay bot at %s reads too slowly; dropping caller audio", self.stream.sid,
                            self.url)
            self.dropped_chunks += 1
            return
        await self._forward(protocol.exotel_media_frame(self._next(), self.stream.sid, self._chunk, timestamp, pcm))

    async def on_dtmf(self, digit: str) -> None:
        if self._keys is not None:
            self._keys.put_nowait(digit)
            return
        await self._forward(protocol.exotel_dtmf_frame(self._next(), self.stream.sid, digit, 100))

    async def on_mark(self, name: str) -> None:
        if name == FALLBACK_MARK and self._fallback_done and not self._fallback_done.done():
            self._fallback_done.set_result(None)
            return
        await self._forward(protocol.exotel_mark_frame(self._next(), self.stream.sid, name))

    async def on_whisper(self, text: str, step: str) -> None:
        if self._ws is None:
            raise ValueError("The relay bot is not connected.")
        await self._to_supervised_bot({"kind": "whisper", "text": text, "step": step})

    async def on_take_over(self) -> None:
        await self._to_supervised_bot({"kind": "take_over"})

    async def on_hand_back(self) -> None:
        await self._to_supervised_bot({"kind": "hand_back"})

    async def _to_supervised_bot(self, supervisor: dict) -> None:
        await self._forward(json.dumps({"event": "supervisor", "sequence_number": self._next(),
                                        "stream_sid": self.stream.sid, "supervisor": supervisor}))

    async def leave_for_person(self) -> None:
        """A transfer took the call: the external bot's part ends as if the call had (handover)."""
        await self.on_stop()

    async def on_stop(self) -> None:
        self._stopping = True
        ws, self._ws = self._ws, None
        if ws is None:
            return
        start = self.stream.start
        try:
            await ws.send(protocol.exotel_stop_frame(self._next(), self.stream.sid, call_sid=start.call_sid,
                                                     account_sid=start.account_sid, reason="callended"))
            await ws.close()
        except websockets.WebSocketException:
            pass
