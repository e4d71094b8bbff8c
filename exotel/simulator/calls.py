"""Simulated calls: each dialled number's fate, its stream, and what Exotel tells the app about it.

A call rings for the number's `ring_seconds`, then is answered, busy, not answered or failed (see
config.py). An answered call streams to the bot: at once for Connect Voice AI, after resolving the
flow's Voicebot URL for flows, and on `start_stream` for Legs. It ends when the caller hangs up
(stop `callended`), the bot closes the socket (how a bot hangs up), the time limit is reached or a
Legs hang-up arrives (stop `stopped`, disconnected by `system`).

Choices where the reference is silent:
- `max_allowed_streams` counts calls that hold a stream or will hold one (ringing or answered):
  a ringing call reserves its stream. A dial beyond the limit is refused at once with HTTP 429
  (`RestException` code `StreamLimitExceeded`, no Retry-After), and ActiveStreams reports the same
  count, so `max - active` is exactly how many more dials will be accepted.
- Status values: `ringing`, `in-progress`, then `completed`, `busy`, `no-answer` or `failed`; a
  stream whose handshake fails twice ends the call as `failed`.
- Answering machines (config.py's `machine`): a leg created with `amd_enable` gets an
  `amd_result_success` event with `event_data` `{"answered_by": <verdict>}` the plan's `amd_delay`
  after the pickup; without `async_amd`, `leg_answered` waits for it (the callee's audio still runs
  from the pickup). Connect calls report `AnsweredBy` once `amd_delay` has passed since the answer
  ("" before: the `answered` callback is sent at the pickup, before any verdict).
- Legs: a greeting with `loop` 0 repeats until `stop_say` or until the bot's audio starts playing
  (logged as "interrupted"); with `loop` N it lasts N x 60 ms per character and then fires
  `say_completed`. Leg states in events: connecting, ringing, answered, terminated.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp

from exotel.simulator.callbacks import Deliveries, now, timestamp
from exotel.simulator.caller import rng_for, script_for
from exotel.simulator.config import Fault, Flow, Pricing, SimConfig
from exotel.simulator.log import WireLog
from exotel.simulator.recording import Recording
from exotel.simulator.stream import StreamOutcome, StreamSession, StreamSpec
from exotel.wire.requests import e164_from_dialled

TERMINAL = ("completed", "busy", "no-answer", "failed")
SAY_SECONDS_PER_CHAR = 0.06


class StreamLimitReached(Exception):
    """The account already holds max_allowed_streams streams."""


@dataclass
class SimCall:
    sid: str
    account_sid: str
    mode: str                       # "bot" | "flow" | "leg"
    number: str                     # E.164
    dialled: str                    # as the request spelt it
    caller_id: str
    stream_url: str = ""
    flow_id: str = ""
    custom_field: str = ""
    status_callback: str = ""
    callback_events: tuple[str, ...] = ()
    callback_content_type: str = ""
    record: bool = False
    recording_channels: str = "single"
    time_limit: int | None = None
    ring_timeout: int | None = None
    leg_event_endpoint: str = ""
    custom_param: str = ""
    amd: str = ""                   # Legs: "sync" (amd_enable) or "async" (with async_amd)
    answered_by: str = ""           # the plan's AnsweredBy, reported once answered_by_after has passed
    answered_by_after: float = 0.0
    sample_rate: int | None = None  # Legs: from start_stream's content_type; else the URL's
    encoding: str = "audio/x-raw"   # Legs: "audio/x-mulaw" when start_stream asked for it
    bidirectional: bool = True      # False: StreamType/direction unidirectional, or a Stream applet
    created: datetime = field(default_factory=now)
    status: str = "queued"
    leg_state: str = "connecting"
    stream_sid: str = ""
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    recording_url: str = ""
    stream_outcome: StreamOutcome | None = None
    recording: Recording | None = None
    session: StreamSession | None = None
    stream_request: asyncio.Future[tuple[str, str]] | None = None
    say: dict[str, Any] | None = None
    last_event: asyncio.Task[None] | None = None   # leg events go out in order
    hangup_at: float | None = None  # loop time when the party hangs up (its plan's hangup_after)
    bridge: Any = None              # the SimBridge it joined (bridges.py)
    nth_dial: int = 0               # how many dials of its number came before it (which plan it takes)
    dial_whom_number: str = ""      # Flow: whom the Transfer applet connected the caller to

    def summary(self) -> dict[str, Any]:
        outcome = self.stream_outcome
        return {"sid": self.sid, "account_sid": self.account_sid, "mode": self.mode, "number": self.number,
                "status": self.status, "leg_state": self.leg_state if self.mode == "leg" else "",
                "stream_sid": self.stream_sid, "stream_url": self.stream_url, "custom_field": self.custom_field,
                "created": timestamp(self.created), "answered": timestamp(self.answered_at),
                "ended": timestamp(self.ended_at), "ended_by": outcome.ended_by if outcome else "",
                "violations": outcome.violations if outcome else 0,
                "chunk_warnings": outcome.chunk_warnings if outcome else 0, "recording_url": self.recording_url}


class Simulator:
    def __init__(self, config: SimConfig, accounts: dict[str, tuple[str, str]], log: WireLog, *,
                 seed: int = 0, strict: bool = False) -> None:
        self.config, self.accounts, self.log, self.seed, self.strict = config, accounts, log, seed, strict
        self.calls: dict[str, SimCall] = {}
        self.dials: Counter[str] = Counter()  # per number, for its plans' `then` (config.py)
        self.bridges: dict[str, Any] = {}  # bridge sid -> SimBridge (bridges.py)
        self.flows: dict[str, Flow] = dict(config.flows)
        self.faults: list[list[Any]] = [[fault, 0] for fault in config.faults]  # [fault, times used]
        self.pricing: Pricing = config.price
        self.base_url = ""
        self.deliveries: Deliveries | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self, base_url: str) -> None:
        self.base_url = base_url
        self._loop = asyncio.get_running_loop()
        self.deliveries = Deliveries(aiohttp.ClientSession(), self.log, self.config.callback_retry_delay,
                                     self.config.grpc_event_target)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.deliveries:
            await self.deliveries.session.close()

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- faults and limits ---------------------------------------------------------------------

    def take_fault(self, endpoint: str, caller_id: str = "") -> Fault | None:
        """The first fault for this request (`caller_id`: the E.164 Exophone it dials from, if any)."""
        for entry in self.faults:
            fault, used = entry
            if (fault.endpoint in (endpoint, "any") and fault.caller_id in ("", caller_id)
                    and (fault.times == 0 or used < fault.times)):
                entry[1] = used + 1
                return fault
        return None

    def set_faults(self, faults: list[Fault]) -> None:
        self.faults = [[fault, 0] for fault in faults]

    def price(self, call: SimCall) -> str | None:
        """Call Details' `Price`: None until `pricing.delay` after the end, then per started minute on the call."""
        if not call.ended_at or now() < call.ended_at + timedelta(seconds=self.pricing.delay):
            return None
        on_call = (call.ended_at - call.answered_at).total_seconds() if call.answered_at else 0.0
        return str((self.pricing.per_minute * math.ceil(on_call / 60)).quantize(Decimal("0.0001")))

    def live_streams(self, account_sid: str) -> int:
        """Streams held or reserved (ringing calls reserve theirs): what ActiveStreams reports."""
        return sum(1 for c in self.calls.values() if c.account_sid == account_sid and c.status not in TERMINAL)

    # --- placing calls -------------------------------------------------------------------------

    def dial(self, call: SimCall) -> SimCall:
        if self.live_streams(call.account_sid) >= self.config.max_streams_for(call.account_sid):
            raise StreamLimitReached(call.account_sid)
        self.calls[call.sid] = call
        call.nth_dial = self.dials[call.number]
        self.dials[call.number] += 1
        self.log.write("call", call_sid=call.sid, status=call.status, mode=call.mode, number=call.number)
        if call.mode == "leg":
            call.stream_request = asyncio.get_running_loop().create_future()
            self.leg_event(call, "leg_connecting")
        self.spawn(self._run(call))
        return call

    async def _run(self, call: SimCall) -> None:
        plan = self.config.plan_for(call.number, call.nth_dial)
        rng = rng_for(self.seed, call.number)
        self._set_status(call, "ringing", leg_state="ringing")
        self._notify(call, "ringing", "leg_ringing")
        outcome, ring = plan.outcome, plan.ring_seconds
        if call.ring_timeout is not None and ring > call.ring_timeout:
            outcome, ring = "no-answer", float(call.ring_timeout)
        await asyncio.sleep(ring)
        if outcome != "answer":
            return self._end(call, outcome)
        call.answered_at = now()
        answered = self._loop_time()
        call.answered_by, call.answered_by_after = plan.answered_by, plan.amd_delay
        if call.amd == "sync":  # Exotel holds the answer until it has a verdict
            await asyncio.sleep(plan.amd_delay)
            self._amd_result(call, plan.amd_result)
        self._set_status(call, "in-progress", leg_state="answered")
        self._notify(call, "answered", "leg_answered")
        if call.amd == "async":
            self.spawn(self._amd_result_later(call, plan.amd_result, answered + plan.amd_delay))
        hangup_at = answered + plan.hangup_after if plan.hangup_after is not None else None
        time_limit_at = answered + call.time_limit if call.time_limit else None
        call.hangup_at = min((t for t in (hangup_at, time_limit_at) if t is not None), default=None)
        url, action_sid = await self._stream_target(call, hangup_at, time_limit_at)
        if call.bridge:
            return await self._end_with_bridge(call)
        if not url:
            ended_by = "caller" if call.mode == "leg" else "failed"
            call.stream_outcome = StreamOutcome(ended_by, "no stream started", 0.0)
            return self._end(call, "completed" if ended_by == "caller" else "failed")
        call.stream_url, call.stream_sid = url, "MZ" + secrets.token_hex(15)
        spec = StreamSpec(url=url, call_sid=call.sid, account_sid=call.account_sid, stream_sid=call.stream_sid,
                          from_=call.number, to=e164_from_dialled(call.caller_id), answered_at=answered,
                          script=script_for(plan, rng), hangup_at=hangup_at, time_limit_at=time_limit_at,
                          seed=self.seed, sample_rate=call.sample_rate, encoding=call.encoding,
                          bidirectional=call.bidirectional)

        async def opened() -> None:
            if call.mode == "leg":
                self.leg_event(call, "stream_started", action_sid=action_sid)

        call.session = StreamSession(spec, self.config, self.log, strict=self.strict, on_open=opened,
                                     on_bot_audio=lambda: self._interrupt_say(call))
        call.recording = call.session.recording
        call.stream_outcome = await call.session.run()
        if call.bridge:
            return await self._end_with_bridge(call)
        if call.mode == "flow" and call.stream_outcome.ended_by == "bot":
            await self._transfer_applet(call)
        self._end(call, "failed" if call.stream_outcome.ended_by == "failed" else "completed")

    async def _transfer_applet(self, call: SimCall) -> None:
        """The flow's Transfer applet after its Voicebot (config.py `transfer_to`): ring each number in turn;
        the first to answer talks with the caller until one of them hangs up."""
        flow = self.flows.get(call.flow_id)
        for number in flow.transfer_to if flow else ():
            plan = self.config.plan_for(number, self.dials[number])
            self.dials[number] += 1
            answers = plan.outcome == "answer" and plan.ring_seconds <= flow.transfer_ring_seconds
            if not await self._caller_waits(call, min(plan.ring_seconds, flow.transfer_ring_seconds)):
                return
            outcome = "answer" if answers else "no-answer" if plan.outcome == "answer" else plan.outcome
            self.log.write("transfer", call_sid=call.sid, number=number, outcome=outcome)
            if answers:
                call.dial_whom_number = number
                talk = plan.hangup_after if plan.hangup_after is not None else float("inf")
                await self._caller_waits(call, talk)
                return

    async def _caller_waits(self, call: SimCall, seconds: float) -> bool:
        """Wait `seconds`, or until the caller hangs up (False then)."""
        left = call.hangup_at - self._loop_time() if call.hangup_at is not None else float("inf")
        await asyncio.sleep(max(0.0, min(seconds, left)))
        return seconds < left

    async def _end_with_bridge(self, call: SimCall) -> None:
        """A bridged leg ends with its bridge (bridges.py): when one party hangs up, both legs end."""
        await call.bridge.done.wait()
        self._end(call, "completed")

    async def _stream_target(self, call: SimCall, hangup_at: float | None,
                             time_limit_at: float | None) -> tuple[str, str]:
        """(WebSocket URL, start_stream action sid) for the answered call, or ("", "") if none."""
        assert self.deliveries
        if call.mode == "bot":
            return call.stream_url, ""
        if call.mode == "flow":
            flow = self.flows.get(call.flow_id)
            if flow:
                call.bidirectional = flow.applet == "voicebot"
            return (await self.deliveries.resolve_stream_url(call, flow.voicebot_url) if flow else ""), ""
        assert call.stream_request
        deadlines = [t for t in (hangup_at, time_limit_at) if t is not None]
        wait = min(deadlines) - self._loop_time() if deadlines else None
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(asyncio.shield(call.stream_request), wait)
        return "", ""

    def _amd_result(self, call: SimCall, verdict: str) -> None:
        if verdict and call.status not in TERMINAL:
            self.leg_event(call, "amd_result_success", event_data={"answered_by": verdict})

    async def _amd_result_later(self, call: SimCall, verdict: str, at: float) -> None:
        await asyncio.sleep(max(0.0, at - self._loop_time()))
        self._amd_result(call, verdict)

    def _loop_time(self) -> float:
        assert self._loop
        return self._loop.time()

    # --- endings and notifications -------------------------------------------------------------

    def _set_status(self, call: SimCall, status: str, *, leg_state: str) -> None:
        call.status, call.leg_state = status, leg_state
        self.log.write("call", call_sid=call.sid, status=status)

    def _notify(self, call: SimCall, event: str, leg_event: str) -> None:
        if call.mode == "leg":
            self.leg_event(call, leg_event)
        elif call.status_callback and event in (call.callback_events or ("terminal",)):
            assert self.deliveries
            self.spawn(self.deliveries.status(call, event))

    def _end(self, call: SimCall, status: str) -> None:
        assert self.deliveries
        call.ended_at = now()
        flow = self.flows.get(call.flow_id) if call.mode == "flow" else None
        if call.recording and (call.record or (flow and flow.record)):
            call.recording_url = f"{self.base_url}/_sim/recordings/{call.sid}.wav"
        outcome = call.stream_outcome
        call.status, call.leg_state = status, "terminated"
        self.log.write("call", call_sid=call.sid, status=status, ended_by=outcome.ended_by if outcome else "",
                       reason=outcome.reason if outcome else "")
        self._notify(call, "terminal", "leg_terminated")
        if flow and flow.passthru_url and call.answered_at:
            self.spawn(self.deliveries.passthru(call, flow.passthru_url, flow.passthru_style, call.recording_url))

    def leg_event(self, call: SimCall, name: str, **details: Any) -> None:
        """Deliver leg events in order: each waits for the previous one's attempts to finish."""
        assert self.deliveries
        previous = call.last_event
        deliveries = self.deliveries

        async def deliver() -> None:
            if previous:
                await asyncio.gather(previous, return_exceptions=True)
            if name == "leg_terminated":
                details.setdefault("event_data", {"status": call.status})
            await deliveries.leg_event(call, name, **details)

        task = asyncio.get_running_loop().create_task(deliver())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        call.last_event = task

    # --- Legs actions --------------------------------------------------------------------------

    def start_stream(self, call: SimCall, url: str, action_sid: str, *, sample_rate: int, encoding: str,
                     bidirectional: bool) -> None:
        call.sample_rate, call.encoding, call.bidirectional = sample_rate, encoding, bidirectional
        if call.stream_request and not call.stream_request.done():
            call.stream_request.set_result((url, action_sid))

    def start_say(self, call: SimCall, text: str, loop: int, action_sid: str) -> None:
        call.say = {"text": text, "action_sid": action_sid}
        self.log.write("say", leg_sid=call.sid, action="start", text=text, loop=loop)
        if loop > 0:
            say = call.say

            async def complete() -> None:
                await asyncio.sleep(len(text) * SAY_SECONDS_PER_CHAR * loop)
                if call.say is say:
                    call.say = None
                    self.log.write("say", leg_sid=call.sid, action="completed", text=text)
                    self.leg_event(call, "say_completed", action_sid=action_sid)

            self.spawn(complete())

    def stop_say(self, call: SimCall) -> None:
        if call.say:
            self.log.write("say", leg_sid=call.sid, action="stop", text=call.say["text"])
            call.say = None

    def _interrupt_say(self, call: SimCall) -> None:
        if call.say:
            self.log.write("say", leg_sid=call.sid, action="interrupted", text=call.say["text"])
            call.say = None

    def hangup(self, call: SimCall) -> None:
        if call.bridge:
            call.bridge.hangup.set()
        elif call.session:
            call.session.request_stop("stopped", "system")
        elif call.stream_request and not call.stream_request.done():
            call.stream_request.set_result(("", ""))
