"""The simulator's configuration: a JSON file read into frozen dataclasses.

Format (every key optional; times in seconds; numbers keyed by E.164):

{
  "default": {"outcome": "answer", "ring_seconds": 1.0, "hangup_after": 10.0},
  "numbers": {
    "+919800000001": {"outcome": "busy", "ring_seconds": 2},
    "+919800000002": {"outcome": "answer", "ring_seconds": 0.2, "hangup_after": 4,
                      "script": [{"at": 0.5, "speech": 1.2, "sound": "tone"},
                                 {"at": 2.0, "dtmf": "5", "duration_ms": 100}]},
    "+919800000003": {"outcome": "answer", "hangup_after": null}
  },
  "faults": [{"endpoint": "connect", "kind": "status", "status": 429, "retry_after": "1",
              "message": "Too many requests", "code": "429", "times": 1},
             {"endpoint": "active_streams", "kind": "slow", "delay": 0.5},
             {"endpoint": "connect", "kind": "timeout", "delay": 600}],
  "max_allowed_streams": {"AC123": 2},
  "default_max_allowed_streams": 100,
  "flows": {"4321": {"voicebot_url": "wss://bot/stream", "passthru_url": "https://app/passthru",
                     "passthru_style": "flat", "record": false, "applet": "voicebot"}},
  "stream": {"frame_ms": 100, "ahead_limit_seconds": 2.0, "speech_dbfs": -20,
             "max_session_seconds": 3600},
  "active_streams_format": "json",
  "callback_retry_delay": 0.5,
  "grpc_event_target": "https://app.example.com/exotel/leg-events",
  "price": {"per_minute": "0.60", "delay": 120}
}

- outcome: "answer" | "busy" | "no-answer" | "failed". ring_seconds: ringing before the outcome (a
  ring timeout shorter than that turns "answer" into "no-answer"). hangup_after: seconds after the
  answer when the caller hangs up; null means never (the bot or the time limit ends the call).
  Agents' numbers, rung as legs when a call is transferred, take plans too: each agent answers, is
  busy or does not answer, and hangs up `hangup_after` seconds after answering (bridges.py).
- then: plans for the number's later dials, in turn (the last one for every dial after), each
  written over the number's own plan: {"outcome": "answer", "then": [{"outcome": "no-answer",
  "ring_seconds": 30}]} answers its first dial and lets every later one ring out. A number's dials
  are counted in the order their requests reached the simulator.
- machine: the number is answered by an answering machine instead of a person: {"greeting_seconds":
  4.0, "beep": true, "amd_result": "machine", "amd_delay": 3.0, "answered_by": "machine"} (every key
  optional, these are the defaults). The caller's side is then a greeting of words (speech with
  pauses under 0.2 s) of that length, then a 0.5 s 1 kHz beep if `beep`, then silence until the hang
  up. A leg created with `amd_enable` gets Exotel's verdict `amd_result` ("machine", "human",
  "unknown", or "" for none: the event never comes) `amd_delay` seconds after the answer, in an
  `amd_result_success` event; without `async_amd` the answer itself waits for it. Connect calls
  carry `answered_by` in the status callbacks' `Legs[0][AnsweredBy]` from the answer on. A person's
  number may set `amd_result`, `amd_delay` (default 0) and `answered_by` too (Exotel's detection is
  not always right): {"outcome": "answer", "amd_result": "machine"}.
- script: the caller's actions, at seconds after the answer: `speech` (a burst of that many seconds
  of a voiced tone or of noise, `sound`), or `dtmf` (a digit). Without a script the caller speaks in
  bursts generated from --seed until it hangs up.
- faults: applied in order to matching requests; endpoint is "connect" | "legs" | "actions" | "bridges" |
  "active_streams" | "call_details" | "get_leg" | "any"; kind "status" answers `status` with Exotel's error shape (and
  Retry-After when `retry_after` is set), "slow" waits `delay` then answers normally, "timeout"
  does the work (the call may exist) and holds the answer for `delay` (default 600) seconds;
  `times` limits a fault to the next N matching requests (0: all); `caller_id` (E.164) limits it to
  dials from that Exophone (connect's CallerId, a leg's exophone): a failing caller ID, e.g.
  {"endpoint": "connect", "caller_id": "+918047400002", "kind": "status", "status": 503}.
  PUT /_sim/faults replaces them.
- max_allowed_streams: per account; a dial beyond it is refused with 429 (see calls.py).
- flows: flow id -> its Voicebot URL (ws(s):// or http(s):// returning {"url": ...}) and Passthru;
  passthru_style "flat" | "nested" | "json"; applet "voicebot" (bidirectional, the default) or
  "stream" (the Stream applet: unidirectional, receive-only). `transfer_to` (E.164 numbers) puts a
  Transfer (Connect) applet after the Voicebot, run when the bot closed the stream: each number is
  rung in turn for `transfer_ring_seconds` (default 20) by its own plan (and `then`), the first to
  answer talks with the caller until either hangs up (its `hangup_after` from its answer), and the
  Passthru, sent at the end, names it in `DialWhomNumber`. PUT /_sim/flows/{flow_id} adds one.
- stream: frame_ms of caller audio per media frame; ahead_limit_seconds of bot audio queued ahead
  of real time before it is a violation; max_session_seconds, the reference's 60-minute limit
  (the stream is then stopped with reason "stopped").
- grpc_event_target: where leg events go for legs created with a grpc:// leg_event_endpoint (the
  reference's own example; the gRPC proto is not published, so they are POSTed here in the HTTPS
  JSON form). Without it such legs are still accepted and their events are logged as undelivered.
- active_streams_format: "json" or "xml" (both are documented answers).
- price: Call Details' `Price` of an ended call, as Exotel fills it in minutes after the end: empty
  (null) until `delay` seconds after the call ended, then `per_minute` times the started minutes
  on the call (60-second pulses; "0.0000" for a call never answered). PUT /_sim/price changes it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

OUTCOMES = ("answer", "busy", "no-answer", "failed")
AMD_RESULTS = ("machine", "human", "unknown", "")
FAULT_KINDS = ("status", "slow", "timeout")
FAULT_ENDPOINTS = ("connect", "legs", "actions", "bridges", "active_streams", "call_details", "get_leg", "any")
PASSTHRU_STYLES = ("flat", "nested", "json")
APPLETS = ("voicebot", "stream")


class ConfigError(ValueError):
    """The config file (or a control request) is not of the documented form."""


@dataclass(frozen=True)
class ScriptStep:
    at: float
    speech: float = 0.0          # seconds of speech; 0 for a DTMF step
    sound: str = "tone"          # "tone" (voiced), "noise" or "beep" (a pure 1 kHz tone)
    dtmf: str = ""
    duration_ms: int = 100


@dataclass(frozen=True)
class Machine:
    greeting_seconds: float = 4.0
    beep: bool = True


@dataclass(frozen=True)
class NumberPlan:
    outcome: str = "answer"
    ring_seconds: float = 1.0
    hangup_after: float | None = 10.0
    script: tuple[ScriptStep, ...] | None = None
    machine: Machine | None = None
    amd_result: str = "human"       # Exotel's verdict on a Legs AMD request; "" never sends one
    amd_delay: float = 0.0          # seconds after the answer
    answered_by: str = "human"      # Connect status callbacks' Legs[0][AnsweredBy]
    then: tuple[NumberPlan, ...] = ()  # the plans of the number's later dials, in turn

    def for_dial(self, nth: int) -> NumberPlan:
        """The plan of the number's `nth` dial (0 for its first)."""
        return self.then[min(nth, len(self.then)) - 1] if nth and self.then else self


@dataclass(frozen=True)
class Fault:
    endpoint: str
    kind: str
    status: int = 500
    message: str = ""
    code: str = ""
    retry_after: str = ""
    delay: float = 600.0
    times: int = 0
    caller_id: str = ""  # E.164: only dials from this Exophone


@dataclass(frozen=True)
class Flow:
    voicebot_url: str
    passthru_url: str = ""
    passthru_style: str = "flat"
    record: bool = False
    applet: str = "voicebot"
    transfer_to: tuple[str, ...] = ()  # the Transfer applet after the Voicebot: numbers rung in turn
    transfer_ring_seconds: float = 20.0


@dataclass(frozen=True)
class Pricing:
    per_minute: Decimal = Decimal("0.60")
    delay: float = 120.0  # seconds after the call's end before its Price is filled


@dataclass(frozen=True)
class SimConfig:
    default: NumberPlan = field(default_factory=NumberPlan)
    numbers: Mapping[str, NumberPlan] = field(default_factory=dict)
    faults: tuple[Fault, ...] = ()
    max_allowed_streams: Mapping[str, int] = field(default_factory=dict)
    default_max_allowed_streams: int = 100
    flows: Mapping[str, Flow] = field(default_factory=dict)
    frame_ms: int = 100
    ahead_limit_seconds: float = 2.0
    speech_dbfs: float = -20.0
    max_session_seconds: float = 3600.0   # reference, "Audio format": max session 60 minutes
    active_streams_format: str = "json"
    callback_retry_delay: float = 0.5
    grpc_event_target: str = ""
    price: Pricing = field(default_factory=Pricing)

    def plan_for(self, e164: str, nth_dial: int = 0) -> NumberPlan:
        return self.numbers.get(e164, self.default).for_dial(nth_dial)

    def max_streams_for(self, account_sid: str) -> int:
        return self.max_allowed_streams.get(account_sid, self.default_max_allowed_streams)


def _choice(value: Any, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _step(raw: Mapping[str, Any]) -> ScriptStep:
    if "dtmf" in raw:
        return ScriptStep(at=float(raw["at"]), dtmf=str(raw["dtmf"]), duration_ms=int(raw.get("duration_ms", 100)))
    return ScriptStep(at=float(raw["at"]), speech=float(raw["speech"]),
                      sound=_choice(raw.get("sound", "tone"), ("tone", "noise", "beep"), "sound"))


def parse_plan(raw: Mapping[str, Any], base: NumberPlan | None = None) -> NumberPlan:
    base = base or NumberPlan()
    script = raw.get("script")
    machine = _machine(raw["machine"]) if "machine" in raw else base.machine
    verdicts = raw.get("machine") or raw  # a machine's keys sit in its object, a person's beside outcome
    default_verdict = "machine" if machine else "human"
    plan = NumberPlan(
        machine=machine,
        amd_result=_choice(verdicts.get("amd_result", default_verdict), AMD_RESULTS, "amd_result"),
        amd_delay=float(verdicts.get("amd_delay", 3.0 if machine else 0.0)),
        answered_by=_choice(verdicts.get("answered_by", default_verdict), AMD_RESULTS, "answered_by"),
        outcome=_choice(raw.get("outcome", base.outcome), OUTCOMES, "outcome"),
        ring_seconds=float(raw.get("ring_seconds", base.ring_seconds)),
        hangup_after=(None if raw.get("hangup_after", base.hangup_after) is None
                      else float(raw.get("hangup_after", base.hangup_after))),
        script=tuple(_step(s) for s in script) if script is not None else base.script,
    )
    later = raw.get("then", [])
    if not isinstance(later, list):
        raise ConfigError("then must be a list of plans")
    return replace(plan, then=tuple(parse_plan(p, plan) for p in later))


def _machine(raw: Mapping[str, Any] | None) -> Machine | None:
    if raw is None:
        return None
    return Machine(greeting_seconds=float(raw.get("greeting_seconds", 4.0)), beep=bool(raw.get("beep", True)))


def parse_fault(raw: Mapping[str, Any]) -> Fault:
    return Fault(endpoint=_choice(raw.get("endpoint", "any"), FAULT_ENDPOINTS, "endpoint"),
                 kind=_choice(raw.get("kind"), FAULT_KINDS, "kind"), status=int(raw.get("status", 500)),
                 message=str(raw.get("message", "")), code=str(raw.get("code", "")),
                 retry_after=str(raw.get("retry_after", "")), delay=float(raw.get("delay", 600.0)),
                 times=int(raw.get("times", 0)), caller_id=str(raw.get("caller_id", "")))


def parse_flow(raw: Mapping[str, Any]) -> Flow:
    if not raw.get("voicebot_url"):
        raise ConfigError("a flow needs voicebot_url")
    return Flow(voicebot_url=str(raw["voicebot_url"]), passthru_url=str(raw.get("passthru_url", "")),
                passthru_style=_choice(raw.get("passthru_style", "flat"), PASSTHRU_STYLES, "passthru_style"),
                record=bool(raw.get("record", False)),
                applet=_choice(raw.get("applet", "voicebot"), APPLETS, "applet"),
                transfer_to=tuple(str(number) for number in raw.get("transfer_to", ())),
                transfer_ring_seconds=float(raw.get("transfer_ring_seconds", 20.0)))


def parse_pricing(raw: Mapping[str, Any]) -> Pricing:
    try:
        per_minute = Decimal(str(raw.get("per_minute", "0.60")))
    except InvalidOperation:
        raise ConfigError(f"price per_minute must be a decimal number, not {raw.get('per_minute')!r}") from None
    delay = float(raw.get("delay", 120.0))
    if not per_minute.is_finite() or per_minute < 0 or delay < 0:
        raise ConfigError("price per_minute and delay must not be negative")
    return Pricing(per_minute=per_minute, delay=delay)


def parse_config(raw: Mapping[str, Any]) -> SimConfig:
    try:
        default = parse_plan(raw.get("default", {}))
        stream = raw.get("stream", {})
        return SimConfig(
            default=default,
            numbers={n: parse_plan(p, default) for n, p in raw.get("numbers", {}).items()},
            faults=tuple(parse_fault(f) for f in raw.get("faults", [])),
            max_allowed_streams={a: int(n) for a, n in raw.get("max_allowed_streams", {}).items()},
            default_max_allowed_streams=int(raw.get("default_max_allowed_streams", 100)),
            flows={str(k): parse_flow(v) for k, v in raw.get("flows", {}).items()},
            frame_ms=int(stream.get("frame_ms", 100)),
            ahead_limit_seconds=float(stream.get("ahead_limit_seconds", 2.0)),
            speech_dbfs=float(stream.get("speech_dbfs", -20.0)),
            max_session_seconds=float(stream.get("max_session_seconds", 3600.0)),
            active_streams_format=_choice(raw.get("active_streams_format", "json"), ("json", "xml"),
                                          "active_streams_format"),
            callback_retry_delay=float(raw.get("callback_retry_delay", 0.5)),
            grpc_event_target=str(raw.get("grpc_event_target", "")),
            price=parse_pricing(raw.get("price", {})),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"bad simulator config: {exc!r}") from exc


def load_config(path: str | Path | None) -> SimConfig:
    if not path:
        return SimConfig()
    return parse_config(json.loads(Path(path).read_text()))
