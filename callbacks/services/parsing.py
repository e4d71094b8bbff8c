"""Reading every documented shape of Exotel's deliveries into small reports; `Malformed` otherwise.

Liberal in what we accept (reference, field notes): keys are compared case-insensitively; status
callbacks come as a form (urlencoded or multipart) or JSON; Passthru as flat lower-case query
fields, nested `Stream[...]` keys, or one JSON string in `Stream`; leg events as the HTTPS JSON
form. A delivery is malformed only when it lacks what we need to act: a status, an event name, or
any way to find its call (sid, leg sid, or our token: in `CustomField`, in the stream URL, or in
the `call` query parameter of the status callback URL we gave Exotel).

Silent in the reference, so chosen here: status timestamps (`DateUpdated`) are in an unstated time
zone, so state changes are stamped with our receipt time; Passthru's `status` and `detailedstatus`
value sets are unpublished and stored as given; a leg that ends unanswered is busy or no-answer
when its event says so and failed otherwise. Who answered: a status callback's `AnsweredBy` (top
level, or per leg: `Legs` as a JSON list or `Legs[0][AnsweredBy]` in a form), an
`amd_result_success` event's `answered_by`, `amd_result` or `result` (its event_data's keys are
not published); both in any spelling `campaigns.machines.normalise` knows.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any

from campaigns import machines
from campaigns.models import Call
from tenancy import weburls

State = Call.State
# Exotel's status words to our call states; `queued` tells us nothing we do not know.
STATUSES = {
    "queued": None,
    "ringing": State.RINGING,
    "in-progress": State.IN_PROGRESS,
    "answered": State.IN_PROGRESS,
    "completed": State.COMPLETED,
    "busy": State.BUSY,
    "no-answer": State.NO_ANSWER,
    "failed": State.FAILED,
    "canceled": State.CANCELED,
    "cancelled": State.CANCELED,
}
STREAM_TOKEN = re.compile(r"/streams/([A-Za-z0-9_-]{8,64})(?:/|\?|$)")
# What our columns hold (Call.exotel_sid, leg_sid, recording_url); longer is not Exotel's.
MAX_SID, MAX_URL = 64, 500
# Far beyond Exotel's longest call (time limit 14400 s): a longer duration is not a call's.
MAX_SECONDS = 86400
# Text the database cannot store: NUL (PostgreSQL refuses it) and lone surrogates (not UTF-8).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class Malformed(ValueError):
    """The delivery cannot be applied; the message says what is missing or wrong."""


@dataclass(frozen=True)
class Match:
    """How a delivery names its call: Exotel's sid, a leg sid, or our token."""

    sid: str = ""
    leg_sid: str = ""
    token: str = ""


@dataclass(frozen=True)
class StatusReport:
    match: Match
    state: State | None
    duration: int | None = None
    recording_url: str = ""
    answered_by: str = ""  # campaigns.machines.VERDICTS, or "" when Exotel did not say


@dataclass(frozen=True)
class PassthruReport:
    match: Match
    fields: dict = field(default_factory=dict)  # call fields to fill
    agent_number: str = ""  # whom a flow's Transfer applet connected the caller to


@dataclass(frozen=True)
class LegEvent:
    match: Match
    name: str
    event_sid: str = ""
    data: dict = field(default_factory=dict)  # event_data and data merged, lower-case keys


def lower_keys(fields: dict[str, Any]) -> dict[str, Any]:
    return {str(key).lower(): value for key, value in fields.items()}


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _seconds(value: Any, name: str) -> int | None:
    text = _text(value)
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise Malformed(f"{name} must be a number of seconds, got {text[:40]!r}") from None
    if not 0 <= seconds <= MAX_SECONDS:  # also refuses inf and nan
        raise Malformed(f"{name} must be between 0 and {MAX_SECONDS} seconds, got {text[:40]!r}")
    return round(seconds)


def _url(value: Any, name: str, schemes: tuple[str, ...] = weburls.WEB) -> str:
    """A URL from Exotel, kept only if it is a web address we can store: never `javascript:`."""
    url = _text(value)
    if url and (len(url) > MAX_URL or not weburls.has_scheme(url, schemes)):
        raise Malformed(f"{name} must be a {'/'.join(schemes)} URL of at most {MAX_URL} characters")
    return url


def _match(sid: str = "", leg_sid: str = "", token: str = "") -> Match:
    match = Match(sid=_text(sid), leg_sid=_text(leg_sid), token=_text(token))
    if not (match.sid or match.leg_sid or match.token):
        raise Malformed("nothing identifies the call: no CallSid, leg sid, CustomField or stream URL")
    if len(match.sid) > MAX_SID or len(match.leg_sid) > MAX_SID:
        raise Malformed(f"a call or leg sid is longer than {MAX_SID} characters")
    return match


def load_json(text: str | bytes, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:  # RecursionError: nested deeper than Python's stack
        raise Malformed(f"{what} is not valid JSON: {str(error)[:100]}") from None


def refuse_unstorable(fields: dict) -> None:
    """Malformed if any key or value, however deeply nested, holds text the database cannot store."""
    pending = [fields]
    while pending:  # a loop, not recursion: the JSON may be as deep as the parser allowed
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value)
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str) and UNSTORABLE.search(value):
            raise Malformed("a field holds a NUL character or invalid Unicode")


def fields_of(request) -> dict:
    """Query and body fields of a delivery as one dict; a body that is not JSON or a form is an error."""
    fields = {key: value for key, value in request.GET.items()}
    if request.method == "POST" and request.body:
        if request.content_type == "application/json" or request.body.lstrip()[:1] == b"{":
            body = load_json(request.body, "the body")
            if not isinstance(body, dict):
                raise Malformed("the JSON body must be an object")
            fields.update(body)
        else:
            fields.update(request.POST.dict())
    refuse_unstorable(fields)
    return fields


def token_in_stream_url(url: str) -> str:
    found = STREAM_TOKEN.search(_text(url))
    return found.group(1) if found else ""


def parse_status(fields: dict[str, Any]) -> StatusReport:
    """A status callback (form or JSON): `CallSid`, `Status`, and on terminal events `CustomField`."""
    fields = lower_keys(fields)
    status = _text(fields.get("status")).lower()
    if not status:
        raise Malformed("Status is missing")
    if status not in STATUSES:
        raise Malformed(f"Status {status!r} is not one of {', '.join(STATUSES)}")
    duration = _seconds(fields.get("conversationduration", fields.get("duration")), "ConversationDuration")
    return StatusReport(
        match=_match(sid=fields.get("callsid"), token=fields.get("customfield") or fields.get("call")),
        state=STATUSES[status],
        duration=duration if STATUSES[status] in Call.FINAL_STATES else None,
        recording_url=_url(fields.get("recordingurl"), "RecordingUrl"),
        answered_by=_answered_by(fields),
    )


def _answered_by(fields: dict[str, Any]) -> str:
    values = [fields.get("answeredby")]
    legs = fields.get("legs")
    if isinstance(legs, list):
        values += [lower_keys(leg).get("answeredby") for leg in legs if isinstance(leg, dict)]
    values += [value for key, value in fields.items() if key.startswith("legs[") and key.endswith("[answeredby]")]
    return next((verdict for value in values if (verdict := machines.normalise(_text(value)))), "")


def amd_result(event: "LegEvent") -> str:
    """An `amd_result_success` event's verdict (campaigns.machines.VERDICTS); unknown when it names none."""
    for key in ("answered_by", "answeredby", "amd_result", "result", "amd_status"):
        if verdict := machines.normalise(_text(event.data.get(key))):
            return verdict
    return machines.UNKNOWN


def _stream_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Passthru's stream fields, from nested `Stream[Key]`, a JSON `Stream`, or flat keys."""
    nested = {key[7:-1]: value for key, value in fields.items() if key.startswith("stream[") and key.endswith("]")}
    if nested:
        return nested
    stream = fields.get("stream")
    if isinstance(stream, str):
        stream = load_json(stream, "Stream") if stream.strip() else None
    if stream is None:
        return fields
    if not isinstance(stream, dict):
        raise Malformed("Stream must be a JSON object")
    return lower_keys(stream)


def parse_passthru(fields: dict[str, Any]) -> PassthruReport:
    fields = lower_keys(fields)
    stream = _stream_fields(fields)
    token = fields.get("customfield") or token_in_stream_url(_url(stream.get("streamurl"), "streamurl", weburls.STREAM + weburls.WEB))
    return PassthruReport(
        match=_match(sid=fields.get("callsid") or stream.get("callsid"), token=token),
        fields={
            "duration": _seconds(stream.get("duration"), "duration"),
            "recording_url": _url(stream.get("recordingurl"), "recordingurl"),
            "error": _text(stream.get("error")),
            "disposition": _text(stream.get("disposition"))[:100],
            "disconnected_by": _text(stream.get("disconnectedby"))[:20],
            "detailed_status": _text(stream.get("detailedstatus") or stream.get("status"))[:100],
        },
        # Exotel's Connect (Transfer) applet reports whom it reached as DialWhomNumber: the agent, in Flow mode.
        agent_number=_text(fields.get("dialwhomnumber"))[:20],
    )


def parse_leg_event(fields: dict[str, Any]) -> LegEvent:
    fields = lower_keys(fields)
    name = _text(fields.get("event_name")).lower()
    if not name:
        raise Malformed("event_name is missing")
    data = fields.get("data") or {}
    event_data = fields.get("event_data") or {}
    if not isinstance(data, dict) or not isinstance(event_data, dict):
        raise Malformed("data and event_data must be JSON objects")
    merged = {**lower_keys(event_data), **lower_keys(data)}
    if name.startswith("bridge_"):  # a bridge's own events name the bridge, not a leg (transfers.engine)
        bridge_sid = _text(merged.get("bridge_sid"))
        if not bridge_sid or len(bridge_sid) > MAX_SID:
            raise Malformed("a bridge event without a usable bridge_sid")
        return LegEvent(match=Match(), name=name, event_sid=_text(fields.get("event_sid")), data=merged)
    token = merged.get("custom_param") or fields.get("custom_param") or fields.get("action_custom_parameter")
    return LegEvent(
        match=_match(leg_sid=merged.get("leg_sid"), token=token),
        name=name,
        event_sid=_text(fields.get("event_sid")),
        data=merged,
    )


def parse_stream_url_request(fields: dict[str, Any]) -> Match:
    """The flow's Voicebot applet asking which URL to stream this call to."""
    fields = lower_keys(fields)
    return _match(sid=fields.get("callsid"), token=fields.get("customfield"))


def leg_end_state(event: LegEvent, *, answered: bool) -> State:
    """The final state of a leg that ended; Exotel's reason wording is not published."""
    if answered:
        return State.COMPLETED
    reason = " ".join(_text(event.data.get(key)).lower() for key in ("reason", "cause", "status", "state"))
    if "busy" in reason:
        return State.BUSY
    if any(word in reason for word in ("no-answer", "no_answer", "noanswer", "not answered", "timeout")):
        return State.NO_ANSWER
    return State.FAILED


def leg_failure(event: LegEvent) -> str:
    detail = ", ".join(f"{key}: {event.data[key]}" for key in ("reason", "cause", "message", "error") if event.data.get(key))
    return f"{event.name} ({detail})" if detail else event.name
