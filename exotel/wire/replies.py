"""How we read Exotel's answers: every documented shape, and errors mapped to typed exceptions.

Accepted shapes (field notes: liberal in what we accept): `{"Call": {...}}` (PascalCase) and
`{"call": {...}}` (lower-case), XML `<TwilioResponse><Call>...` and `<RestException>`, v2 envelopes
`{"request_id", "http_code", "response": {"data"|"error": ...}}`, ActiveStreams as JSON or as XML
`<Stream><ActiveStreamCount/><ThrottleLimit/></Stream>`. Keys are compared case-insensitively.

Silent in the reference, so chosen here: Legs create/action data is read from `response.data`
accepting `leg_sid` or `sid`, and `state` or `status`; a v2 error envelope inside a 2xx answer is
an error with the envelope's `http_code`; a 3xx (Exotel's APIs never redirect) is a refusal.

Call Details and Get Leg both read into `CallDetails`, whose `status` is in the call status words
(`queued`, `ringing`, `in-progress`, `completed`, `busy`, `no-answer`, `failed`, `canceled`). Get
Leg's `state` and `terminal_status` values are not published: a leg in `connecting` is `queued`,
`ringing` is `ringing`, `answered` or `connected` is `in-progress`; an ended leg (`terminated`, or
any `terminal_status`) takes its terminal status when that is a call status word, otherwise
`completed` if it was on the call (`on_call_duration_ms` > 0) and `failed` if not.

Call Details' `Price` is a decimal string in the account's billing currency (none is named), empty
until Exotel has rated the call, minutes after its end: `CallDetails.price` is None until then, and
None, logged, for a value that is not a non-negative decimal (so it is asked for again later).
"""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any

from exotel.errors import (
    AuthenticationError,
    ExotelError,
    RateLimitedError,
    RejectedError,
    TransientError,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallInfo:
    sid: str
    status: str
    from_: str = ""
    to: str = ""
    direction: str = ""
    date_created: str = ""
    phone_number_sid: str = ""
    recording_url: str = ""
    account_sid: str = ""


@dataclass(frozen=True)
class CallDetails:
    """What Exotel knows of a call now (Call Details API, or Get Leg for a leg)."""

    sid: str
    status: str
    start_time: str = ""
    end_time: str = ""
    duration: int | None = None
    recording_url: str = ""
    answered_by: str = ""
    price: Decimal | None = None  # Call Details only: Get Leg documents no price


@dataclass(frozen=True)
class LegInfo:
    leg_sid: str
    state: str
    request_id: str = ""


@dataclass(frozen=True)
class ActionAccepted:
    """Legs actions answer 202: accepted, with success or failure reported by a later event."""

    request_id: str


@dataclass(frozen=True)
class BridgeInfo:
    """A bridge of legs: created at once; `bridge_created` or `bridge_failed_to_create` follows as an event."""

    bridge_sid: str
    request_id: str = ""


@dataclass(frozen=True)
class ActiveStreams:
    active: int
    max_allowed: int



@dataclass(frozen=True)
class Reply:
    """What came back, independent of the HTTP library."""

    status: int
    body: bytes
    content_type: str = ""
    retry_after: str = ""



def _is_xml(reply: Reply) -> bool:
    return "xml" in reply.content_type or reply.body.lstrip()[:1] == b"<"


def _lower_keys(value: Any) -> Any:
    """Lower-case every key, so PascalCase and lower-case answers read the same."""
    if isinstance(value, dict):
        return {str(k).lower(): _lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_keys(v) for v in value]
    return value


def _xml_to_dict(element: ET.Element) -> Any:
    children = list(element)
    if not children:
        return (element.text or "").strip()
    return {child.tag.lower(): _xml_to_dict(child) for child in children}


def _document(reply: Reply) -> dict[str, Any]:
    """The body as a dict with lower-case keys, from JSON or XML (`<TwilioResponse>` unwrapped)."""
    try:
        if _is_xml(reply):
            root = ET.fromstring(reply.body)
            doc = _xml_to_dict(root)
            return doc if isinstance(doc, dict) else {}
        doc = json.loads(reply.body or b"{}")
    except (ValueError, ET.ParseError) as exc:
        raise ExotelError(f"unreadable answer from Exotel: {exc}", status=reply.status) from exc
    return _lower_keys(doc) if isinstance(doc, dict) else {}


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def parse_call(reply: Reply) -> CallInfo:
    doc = _document(reply)
    call = doc.get("call")  # `{"Call": ...}` (field notes) or `{"call": ...}` (reference)
    if not isinstance(call, dict) or not call.get("sid"):
        raise ExotelError("answer has no Call.Sid", status=reply.status)
    return CallInfo(
        sid=_text(call["sid"]), status=_text(call.get("status")), from_=_text(call.get("from")),
        to=_text(call.get("to")), direction=_text(call.get("direction")),
        date_created=_text(call.get("datecreated")), phone_number_sid=_text(call.get("phonenumbersid")),
        recording_url=_text(call.get("recordingurl")), account_sid=_text(call.get("accountsid")),
    )


def _seconds(value: Any) -> int | None:
    """A duration in seconds, or None when absent or unreadable (details are informative only)."""
    try:
        return max(0, round(float(value)))
    except (TypeError, ValueError):
        return None


def parse_call_details(reply: Reply) -> CallDetails:
    doc = _document(reply)
    call = doc.get("call")  # same envelope as the Connect answer (field notes)
    if not isinstance(call, dict) or not call.get("sid"):
        raise ExotelError("answer has no Call.Sid", status=reply.status)
    return CallDetails(
        sid=_text(call["sid"]), status=_text(call.get("status")).lower(), start_time=_text(call.get("starttime")),
        end_time=_text(call.get("endtime")), duration=_seconds(call.get("duration")),
        recording_url=_text(call.get("recordingurl")), answered_by=_text(call.get("answeredby")),
        price=_price(call.get("price")),
    )


def _price(value: Any) -> Decimal | None:
    text = _text(value).strip()
    if not text:
        return None
    try:
        price = Decimal(text)
    except InvalidOperation:
        price = None
    if price is None or not price.is_finite() or price < 0:
        log.warning("Call Details' Price %r is not a non-negative decimal: taken as not rated yet", text[:40])
        return None
    return price


CALL_STATUSES = ("queued", "ringing", "in-progress", "completed", "busy", "no-answer", "failed", "canceled")
_LEG_LIVE_STATES = {"connecting": "queued", "ringing": "ringing", "answered": "in-progress",
                    "connected": "in-progress"}


def _leg_status(state: str, terminal_status: str, on_call_ms: int | None) -> str:
    if not terminal_status and state in _LEG_LIVE_STATES:
        return _LEG_LIVE_STATES[state]
    if not terminal_status and state != "terminated":
        return ""  # a state we do not know: nothing to conclude
    if terminal_status in CALL_STATUSES:
        return terminal_status
    return "completed" if on_call_ms else "failed"


def parse_leg_details(reply: Reply) -> CallDetails:
    _, data = _envelope_data(reply)
    leg_sid = _text(data.get("leg_sid") or data.get("sid"))
    if not leg_sid:
        raise ExotelError("answer has no leg sid", status=reply.status)
    on_call_ms = _seconds(data.get("on_call_duration_ms"))
    status = _leg_status(_text(data.get("state")).lower(), _text(data.get("terminal_status")).lower(), on_call_ms)
    return CallDetails(
        sid=leg_sid, status=status, start_time=_text(data.get("start_time")), end_time=_text(data.get("end_time")),
        duration=None if on_call_ms is None else round(on_call_ms / 1000),
        recording_url=_text(data.get("recording_url")), answered_by=_text(data.get("answered_by")),
    )


def _envelope_data(reply: Reply) -> tuple[str, dict[str, Any]]:
    doc = _document(reply)
    data = (doc.get("response") or {}).get("data") or {}
    return _text(doc.get("request_id")), data if isinstance(data, dict) else {}


def parse_leg(reply: Reply) -> LegInfo:
    request_id, data = _envelope_data(reply)
    leg_sid = _text(data.get("leg_sid") or data.get("sid"))
    if not leg_sid:
        raise ExotelError("answer has no leg sid", status=reply.status)
    return LegInfo(leg_sid=leg_sid, state=_text(data.get("state") or data.get("status")),
                   request_id=request_id)


def parse_bridge(reply: Reply) -> BridgeInfo:
    # Exotel's Bridges page shows the fields bare; other v2 answers wrap them in the envelope: read both.
    request_id, data = _envelope_data(reply)
    bridge_sid = _text(data.get("bridge_sid") or _document(reply).get("bridge_sid"))
    if not bridge_sid:
        raise ExotelError("answer has no bridge sid", status=reply.status)
    return BridgeInfo(bridge_sid=bridge_sid, request_id=request_id)


def parse_action(reply: Reply) -> ActionAccepted:
    return ActionAccepted(request_id=_envelope_data(reply)[0])


def parse_active_streams(reply: Reply) -> ActiveStreams:
    doc = _document(reply)
    stream = doc.get("stream")  # XML: <Stream><ActiveStreamCount/><ThrottleLimit/></Stream>
    try:
        if isinstance(stream, dict):
            return ActiveStreams(int(stream["activestreamcount"]), int(stream["throttlelimit"]))
        return ActiveStreams(int(doc["active_streams"]), int(doc["max_allowed_streams"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ExotelError(f"unreadable ActiveStreams answer: {exc!r}", status=reply.status) from exc


def parse_retry_after(value: str) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _error_details(reply: Reply) -> tuple[int, str, str | None]:
    """(status, message, code) from RestException (JSON or XML), a v2 envelope, or plain text."""
    status = reply.status
    try:
        doc = _document(reply)
    except ExotelError:
        return status, reply.body[:200].decode("utf-8", "replace") or f"HTTP {status}", None
    rest = doc.get("restexception")
    if isinstance(rest, dict):
        code = rest.get("code")  # field notes: Code may be a string or an integer
        return status, _text(rest.get("message")) or f"HTTP {status}", None if code in (None, "") else str(code)
    error = (doc.get("response") or {}).get("error") if isinstance(doc.get("response"), dict) else None
    if isinstance(error, dict):
        envelope_status = doc.get("http_code")
        if status < 400 and str(envelope_status).isdigit():
            status = int(envelope_status)
        code = error.get("code")
        return status, _text(error.get("message")) or f"HTTP {status}", None if code in (None, "") else str(code)
    return status, _text(doc.get("message")) or f"HTTP {status}", None


def error_for(reply: Reply) -> ExotelError | None:
    """The typed error an answer means, or None for success (v2 may wrap an error in a 2xx)."""
    if reply.status < 300 and b'"error"' not in reply.body:
        return None
    status, message, code = _error_details(reply)
    if status < 300:
        return None
    if status in (401, 403):
        return AuthenticationError(message, status=status, code=code)
    if status == 429:
        return RateLimitedError(message, status=status, code=code,
                                retry_after=parse_retry_after(reply.retry_after))
    if status < 500:
        # 3xx included: Exotel's APIs never redirect, so treat one as a refusal, not a success.
        return RejectedError(message, status=status, code=code)
    return TransientError(message, status=status, code=code)
