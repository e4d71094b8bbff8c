"""AgentStream WebSocket frames: typed events in, JSON text frames out, and the close-code table.

Exotel -> bot frames are parsed by `parse_frame`: strict on what the protocol needs (a JSON object
with an `event`; a start with stream and call SIDs and a supported sample rate; media with a valid
base64 payload of whole 16-bit samples; a dtmf digit; a mark name), tolerant of everything else
(field notes): extra fields, numbers as strings or integers, `stream_sid`/`streamSid`,
`call_sid`/`callSid`, `media_format` keys spelt `sample_rate`/`sampleRate`/`rate`, and unknown
events (returned as `Unknown`, never fatal). Outside `start`, a missing stream SID reads as "".

Bot -> Exotel frames are built by `media_frame`, `mark_frame`, `clear_frame` (always `stream_sid`)
and read back by `parse_bot_frame` (the simulator's side). The simulator's own frames are built by
the `exotel_*` builders here too, so one module owns the JSON shapes in both directions.

Choices where the reference is silent: `media.timestamp` is in milliseconds (units unpublished);
a missing `media_format.sample_rate` means the 8000 Hz default; close codes for violations are in
`VIOLATION_CODES` (non-JSON 1003, protocol/unknown event 1002, bad payload or chunk size 1007,
chunk over 100000 bytes 1009, wrong stream SID or audio far ahead of real time 1008).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from exotel.wire.requests import SAMPLE_RATES

CHUNK_MIN, CHUNK_MAX, CHUNK_MULTIPLE = 3200, 100000, 320


class CloseCode(IntEnum):
    """WebSocket close codes from the reference's table."""

    NORMAL = 1000               # clean disconnect
    GOING_AWAY = 1001           # server restart
    PROTOCOL_ERROR = 1002       # malformed frames
    UNSUPPORTED_DATA = 1003     # malformed frames (not JSON)
    ABNORMAL = 1006             # network drop, TLS failure, crash (never sent, only observed)
    INVALID_PAYLOAD = 1007      # chunk out of bounds, bad payload
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011       # unhandled exception
    SERVICE_RESTART = 1012      # transient, retry
    TRY_AGAIN_LATER = 1013      # transient, retry


def wire_code(code: CloseCode) -> int:
    """The close code our server sends for a code of the table above.

    The table says what a peer may see; a server under daphne (autobahn) may only send 1000 or
    3000-4999 (RFC 6455 reserves the rest for the protocol itself). So 1000 goes as it is and every
    other code as 4000 plus its last three digits: 1001 -> 4001, 1008 -> 4008, 1011 -> 4011.
    1006 is never sent (it only names a connection lost without a close frame).
    """
    if code == CloseCode.ABNORMAL:
        raise ValueError("1006 is never sent: it names a connection lost without a close frame")
    return int(code) if code == CloseCode.NORMAL else int(code) + 3000


class ProtocolError(ValueError):
    """A frame breaks the protocol; `close_code` is the code to close with if one must."""

    def __init__(self, message: str, close_code: CloseCode) -> None:
        super().__init__(message)
        self.close_code = close_code


# --- events from Exotel -------------------------------------------------------------------------

@dataclass(frozen=True)
class Connected:
    pass


@dataclass(frozen=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str = ""
    from_: str = ""
    to: str = ""
    custom_parameters: Mapping[str, str] = field(default_factory=dict)
    sample_rate: int = 8000
    encoding: str = "audio/x-raw"
    bit_rate: int = 16
    sequence_number: int | None = None


@dataclass(frozen=True)
class Media:
    stream_sid: str
    sequence_number: int | None
    chunk: int | None
    timestamp: int | None
    payload: bytes


@dataclass(frozen=True)
class Dtmf:
    stream_sid: str
    sequence_number: int | None
    digit: str
    duration: int | None


@dataclass(frozen=True)
class Mark:
    stream_sid: str
    sequence_number: int | None
    name: str


@dataclass(frozen=True)
class Stop:
    stream_sid: str
    sequence_number: int | None
    reason: str
    call_sid: str = ""
    account_sid: str = ""


@dataclass(frozen=True)
class Unknown:
    """An event this code does not know: report it, never fail on it."""

    event: str
    raw: Mapping[str, Any]


Event = Connected | Start | Media | Dtmf | Mark | Stop | Unknown


# --- events from the bot (the simulator's side) ------------------------------------------------

@dataclass(frozen=True)
class BotMedia:
    stream_sid: str
    payload: bytes


@dataclass(frozen=True)
class BotMark:
    stream_sid: str
    name: str


@dataclass(frozen=True)
class BotClear:
    stream_sid: str


BotEvent = BotMedia | BotMark | BotClear | Unknown


# --- parsing ------------------------------------------------------------------------------------

def _load(text: str | bytes) -> dict[str, Any]:
    try:
        obj = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"frame is not JSON: {exc}", CloseCode.UNSUPPORTED_DATA) from exc
    if not isinstance(obj, dict):
        raise ProtocolError("frame is not a JSON object", CloseCode.UNSUPPORTED_DATA)
    if not isinstance(obj.get("event"), str):
        raise ProtocolError("frame has no 'event'", CloseCode.PROTOCOL_ERROR)
    return obj


def _either(obj: Mapping[str, Any], snake: str, camel: str) -> str:
    value = obj.get(snake, obj.get(camel))
    return "" if value is None else str(value)


def _int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ProtocolError(f"{name} is not a number: {value!r}", CloseCode.INVALID_PAYLOAD) from None


def _section(obj: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    section = obj.get(name)
    if not isinstance(section, dict):
        raise ProtocolError(f"'{name}' event has no '{name}' object", CloseCode.PROTOCOL_ERROR)
    return section


def decode_payload(value: Any, sample_width: int = 2) -> bytes:
    """Base64 audio -> bytes; a bad encoding or part of a sample is a payload error (1007).

    `sample_width` is 2 for PCM16 and 1 for μ-law (the Legs API's `audio/x-mulaw`).
    """
    try:
        audio = base64.b64decode(value if isinstance(value, str) else "", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError(f"payload is not base64: {exc}", CloseCode.INVALID_PAYLOAD) from exc
    if not isinstance(value, str) or len(audio) % sample_width:
        raise ProtocolError(f"payload is not whole {8 * sample_width}-bit samples", CloseCode.INVALID_PAYLOAD)
    return audio


def _parse_start(obj: Mapping[str, Any], seq: int | None) -> Start:
    start = _section(obj, "start")
    stream_sid = _either(start, "stream_sid", "streamSid") or _either(obj, "stream_sid", "streamSid")
    call_sid = _either(start, "call_sid", "callSid")
    if not stream_sid or not call_sid:
        raise ProtocolError("start needs stream_sid and call_sid", CloseCode.PROTOCOL_ERROR)
    fmt = start.get("media_format") or start.get("mediaFormat") or {}
    fmt = fmt if isinstance(fmt, dict) else {}
    rate = _int(fmt.get("sample_rate", fmt.get("sampleRate", fmt.get("rate"))), "sample_rate") or 8000
    if rate not in SAMPLE_RATES:
        raise ProtocolError(f"unsupported sample rate {rate}", CloseCode.INVALID_PAYLOAD)
    params = start.get("custom_parameters") or start.get("customParameters") or {}
    return Start(
        stream_sid=stream_sid, call_sid=call_sid,
        account_sid=_either(start, "account_sid", "accountSid"),
        from_=str(start.get("from", "")), to=str(start.get("to", "")),
        custom_parameters={str(k): str(v) for k, v in params.items()} if isinstance(params, dict) else {},
        sample_rate=rate, encoding=str(fmt.get("encoding", "audio/x-raw")),
        bit_rate=_int(fmt.get("bit_rate", fmt.get("bitRate")), "bit_rate") or 16, sequence_number=seq,
    )


def parse_frame(text: str | bytes) -> Event:
    """One Exotel -> bot frame as a typed event. Raises `ProtocolError` (with a close code)."""
    obj = _load(text)
    event = obj["event"]
    seq = _int(obj.get("sequence_number", obj.get("sequenceNumber")), "sequence_number")
    stream_sid = _either(obj, "stream_sid", "streamSid")
    if event == "connected":
        return Connected()
    if event == "start":
        return _parse_start(obj, seq)
    if event == "media":
        media = _section(obj, "media")
        return Media(stream_sid, seq, _int(media.get("chunk"), "chunk"),
                     _int(media.get("timestamp"), "timestamp"), decode_payload(media.get("payload")))
    if event == "dtmf":
        dtmf = _section(obj, "dtmf")
        if not str(dtmf.get("digit", "")):
            raise ProtocolError("dtmf has no digit", CloseCode.PROTOCOL_ERROR)
        return Dtmf(stream_sid, seq, str(dtmf["digit"]), _int(dtmf.get("duration"), "duration"))
    if event == "mark":
        return Mark(stream_sid, seq, str(_section(obj, "mark").get("name", "")))
    if event == "stop":
        stop = obj.get("stop") if isinstance(obj.get("stop"), dict) else {}
        return Stop(stream_sid, seq, str(stop.get("reason", "")), _either(stop, "call_sid", "callSid"),
                    _either(stop, "account_sid", "accountSid"))
    return Unknown(event, obj)


def parse_bot_frame(text: str | bytes, sample_width: int = 2) -> BotEvent:
    """One bot -> Exotel frame (what the simulator receives).

    The stream SID is optional here: the reference puts `stream_sid` on every bot frame, Exotel's
    own samples spell it `streamSid` or echo whatever they were given. A frame without one reads
    as "" and belongs to the stream it arrived on; only a different SID is the caller's concern.
    """
    obj = _load(text)
    event, stream_sid = obj["event"], _either(obj, "stream_sid", "streamSid")
    if event == "media":
        return BotMedia(stream_sid, decode_payload(_section(obj, "media").get("payload"), sample_width))
    if event == "mark":
        name = _section(obj, "mark").get("name")
        if not isinstance(name, str) or not name:
            raise ProtocolError("mark has no name", CloseCode.PROTOCOL_ERROR)
        return BotMark(stream_sid, name)
    if event == "clear":
        return BotClear(stream_sid)
    return Unknown(event, obj)


def chunk_problem(size: int) -> tuple[str, CloseCode] | None:
    """Why an outbound chunk of `size` bytes breaks the rules (reason, close code), or None."""
    if size > CHUNK_MAX:
        return f"chunk of {size} bytes is over {CHUNK_MAX}", CloseCode.MESSAGE_TOO_BIG
    if size < CHUNK_MIN:
        return f"chunk of {size} bytes is under {CHUNK_MIN}", CloseCode.INVALID_PAYLOAD
    if size % CHUNK_MULTIPLE:
        return f"chunk of {size} bytes is not a multiple of {CHUNK_MULTIPLE}", CloseCode.INVALID_PAYLOAD
    return None


# --- building frames ----------------------------------------------------------------------------

def _dump(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _b64(pcm: bytes) -> str:
    return base64.b64encode(pcm).decode("ascii")


def media_frame(stream_sid: str, pcm: bytes) -> str:
    """Audio to play to the caller. `pcm` must be a legal chunk (use `exotel.audio.chunk_pcm`)."""
    problem = chunk_problem(len(pcm))
    if problem:
        raise ValueError(problem[0])
    # `_dump`'s text, put together: base64 needs no escaping, and json.dumps scanning it for characters
    # to escape took two thirds of the time of every frame the bot sends.
    return f'{{"event":"media","stream_sid":{json.dumps(stream_sid)},"media":{{"payload":"{_b64(pcm)}"}}}}'


def mark_frame(stream_sid: str, name: str) -> str:
    """Ask to be told (by a `mark` back) when the audio sent so far has played."""
    if not name:
        raise ValueError("a mark needs a name")
    return _dump({"event": "mark", "stream_sid": stream_sid, "mark": {"name": name}})


def clear_frame(stream_sid: str) -> str:
    """Drop audio that has not started playing (barge-in)."""
    return _dump({"event": "clear", "stream_sid": stream_sid})


# Exotel's side, used by the simulator. Numbers inside events are strings, as the reference says.

def exotel_connected_frame() -> str:
    return _dump({"event": "connected"})


def exotel_start_frame(seq: int, *, stream_sid: str, call_sid: str, account_sid: str, from_: str,
                       to: str, custom_parameters: Mapping[str, str], sample_rate: int,
                       encoding: str = "audio/x-raw") -> str:
    bit_rate = "8" if encoding == "audio/x-mulaw" else "16"
    return _dump({"event": "start", "sequence_number": str(seq), "stream_sid": stream_sid, "start": {
        "stream_sid": stream_sid, "call_sid": call_sid, "account_sid": account_sid, "from": from_,
        "to": to, "custom_parameters": dict(custom_parameters),
        "media_format": {"encoding": encoding, "sample_rate": str(sample_rate), "bit_rate": bit_rate}}})


def exotel_media_frame(seq: int, stream_sid: str, chunk: int, timestamp_ms: int, pcm: bytes) -> str:
    return _dump({"event": "media", "sequence_number": str(seq), "stream_sid": stream_sid,
                  "media": {"chunk": str(chunk), "timestamp": str(timestamp_ms), "payload": _b64(pcm)}})


def exotel_dtmf_frame(seq: int, stream_sid: str, digit: str, duration_ms: int) -> str:
    return _dump({"event": "dtmf", "sequence_number": str(seq), "stream_sid": stream_sid,
                  "dtmf": {"digit": digit, "duration": str(duration_ms)}})


def exotel_mark_frame(seq: int, stream_sid: str, name: str) -> str:
    return _dump({"event": "mark", "sequence_number": str(seq), "stream_sid": stream_sid,
                  "mark": {"name": name}})


def exotel_stop_frame(seq: int, stream_sid: str, *, call_sid: str, account_sid: str, reason: str) -> str:
    return _dump({"event": "stop", "sequence_number": str(seq), "stream_sid": stream_sid,
                  "stop": {"call_sid": call_sid, "account_sid": account_sid, "reason": reason}})
