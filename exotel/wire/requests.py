"""What we send to Exotel: accounts, request parameters, validation and one `Request` per call.

Rule from the reference's field notes: be exact in what we send (the form Exotel's own sample code
uses), liberal in what we accept. Each choice below carries a comment naming its source. Where the
reference is silent we chose, and say so here:

- `TimeOut` (flow ring timeout) and Legs `ring_timeout`: no published maximum; we only require a
  positive integer no larger than the 14400 s call limit.
- Flow `CallType`: only `trans` is documented, so it is the only value we send.
- Flow `StatusCallbackEvents[]`: the flow form documents `terminal`, `answered`, `both`; we send the
  PascalCase repeated key like the voice-AI form, so `both` is spelt as both events.
- Legs `start_stream.content_type`: the only example says `audio/x-mulaw;rate=8000`, but the stream
  protocol is 16-bit linear PCM, so we ask for `audio/x-l16;rate=<sample rate>`.
  What we accept (the simulator): `audio/x-l16` and the reference's `audio/x-mulaw`, each at one of
  the supported rates; μ-law streams carry one byte a sample both ways.
- Legs `leg_event_endpoint`: we send an https:// endpoint (the HTTPS event form); the reference's
  own example is `grpc://…`, which the simulator accepts too (`LEG_EVENT_SCHEMES_ACCEPTED`).
- Custom stream parameters' 256-character budget counts the encoded `key=value` pairs joined by `&`.
- Legs `amd_enable` / `async_amd`: named by Exotel's Legs reference (with the `amd_result_success`
  event) but not their types; we send JSON booleans, and `async_amd` only with `amd_enable`.
- The national dialled form is `0` + the national significant number (the field notes' example
  `07314852338`), whatever the country.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode, urlsplit

import phonenumbers

from exotel.errors import ValidationError
from exotel.wire.replies import (
    ActionAccepted,
    ActiveStreams,
    BridgeInfo,
    CallDetails,
    CallInfo,
    LegInfo,
    Reply,
    parse_action,
    parse_active_streams,
    parse_bridge,
    parse_call,
    parse_call_details,
    parse_leg,
    parse_leg_details,
)

T = TypeVar("T")

# Reference, "Connect Voice AI": Mumbai and Singapore hosts. Field notes: Legs live on cpaas-api.
REGION_BASES = {
    "mumbai": ("https://api.in.exotel.com", "https://cpaas-api.in.exotel.com"),
    "singapore": ("https://api.exotel.com", "https://cpaas-api.exotel.com"),
}
NUMBER_FORMS = ("e164", "national")

# Documented limits, checked before a request leaves.
STREAM_URL_MAX = 600          # field notes: counts the whole URL with its query string
CUSTOM_FIELD_MAX = 128
STREAM_NAME_MAX = 32
TIME_LIMIT_MAX = 14400
SAMPLE_RATES = (8000, 16000, 24000)
CUSTOM_PARAMS_MAX = 3
CUSTOM_PARAMS_CHARS_MAX = 256
CALLBACK_EVENTS = ("answered", "terminal", "ringing")
FLOW_CALLBACK_EVENTS = ("answered", "terminal")
CALLBACK_CONTENT_TYPES = ("application/json", "multipart/form-data")
RECORDING_CHANNELS = ("single", "dual")
STREAM_DIRECTIONS = ("bidirectional", "unidirectional")
# Legs start_stream content types -> the stream's `media_format.encoding` (see the docstring).
STREAM_CONTENT_TYPES = {"audio/x-l16": "audio/x-raw", "audio/x-mulaw": "audio/x-mulaw"}
LEG_EVENT_SCHEMES = ("http", "https")
LEG_EVENT_SCHEMES_ACCEPTED = ("grpc", "http", "https")
# Field notes: hang-up is an ExoML action, not a named one.
HANGUP_EXOML = "<Flow><Hangup/></Flow>"
_SID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


@dataclass(frozen=True)
class Account:
    """An Exotel account. `base_url_override` (e.g. the simulator) replaces both API hosts."""

    account_sid: str
    api_key: str = field(repr=False)
    api_token: str = field(repr=False)
    region: str = "mumbai"
    base_url_override: str = ""
    number_form: str = "e164"

    def __post_init__(self) -> None:
        if not _SID.match(self.account_sid):
            raise ValidationError("account_sid", "must be letters, digits, '-' or '_'")
        if self.region not in REGION_BASES and not self.base_url_override:
            raise ValidationError("region", f"must be one of {', '.join(REGION_BASES)}")
        if self.number_form not in NUMBER_FORMS:
            raise ValidationError("number_form", f"must be one of {', '.join(NUMBER_FORMS)}")

    @property
    def api_base(self) -> str:
        return self.base_url_override.rstrip("/") or REGION_BASES[self.region][0]

    @property
    def cpaas_base(self) -> str:
        return self.base_url_override.rstrip("/") or REGION_BASES[self.region][1]


# --- parameters -------------------------------------------------------------------------------

@dataclass(frozen=True)
class BotCall:
    """Connect Voice AI: dial `number` (E.164) and stream the answered call to `stream_url`."""

    number: str
    caller_id: str
    stream_url: str
    record: bool = False
    recording_channels: str = ""
    time_limit: int | None = None
    custom_field: str = ""
    status_callback: str = ""
    status_callback_events: tuple[str, ...] = ()
    status_callback_content_type: str = ""
    stream_name: str = ""


@dataclass(frozen=True)
class FlowCall:
    """Connect through a flow whose Voicebot applet points at the bot."""

    number: str
    caller_id: str
    flow_url: str
    call_type: str = "trans"
    time_limit: int | None = None
    timeout: int | None = None
    custom_field: str = ""
    status_callback: str = ""
    status_callback_events: tuple[str, ...] = ()
    status_callback_content_type: str = ""


@dataclass(frozen=True)
class NewLeg:
    """Legs API v2: dial a leg; its lifecycle events go to `leg_event_endpoint` (HTTPS form)."""

    number: str
    exophone: str
    leg_event_endpoint: str
    custom_param: str = ""
    ring_timeout: int | None = None
    time_limit: int | None = None
    amd: bool = False  # answering-machine detection: an `amd_result_success` event follows the answer
    amd_async: bool = False  # answer at once instead of when the verdict is in


@dataclass(frozen=True)
class Request(Generic[T]):
    """One request, described once and sent by either client. `parse` reads a 2xx reply."""

    method: str
    url: str
    parse: Callable[[Reply], T]
    form: tuple[tuple[str, str], ...] = ()
    json: Mapping[str, Any] | None = None
    idempotent: bool = False



# --- validation -------------------------------------------------------------------------------

def _check_number(name: str, value: str) -> phonenumbers.PhoneNumber:
    # Reference: `from` is E.164. We store E.164 and only format for dialling at the edge.
    if not re.fullmatch(r"\+[1-9]\d{6,14}", value or ""):
        raise ValidationError(name, f"must be an E.164 number like +919876543210, got {value!r}")
    parsed = phonenumbers.parse(value)
    if not phonenumbers.is_possible_number(parsed):
        raise ValidationError(name, f"{value!r} is not a possible phone number")
    return parsed


def e164_from_dialled(number: str, region: str = "IN") -> str:
    """A number as Exotel accepts it (E.164, or national with a leading 0) in E.164; else as given."""
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return number
    if not phonenumbers.is_possible_number(parsed):
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def dialled_number(e164: str, form: str, *, field_name: str = "From") -> str:
    """The number as sent to Exotel: E.164, or national with a leading 0 (per-account setting)."""
    parsed = _check_number(field_name, e164)
    if form == "national":
        # Field notes: some integrations only worked with `07314852338`-style national numbers.
        return "0" + phonenumbers.national_significant_number(parsed)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _check_required(name: str, value: str) -> None:
    if not value or not value.strip():
        raise ValidationError(name, "is required")


def _check_max_len(name: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise ValidationError(name, f"must be at most {limit} characters, got {len(value)}")


def _check_url(name: str, url: str, schemes: tuple[str, ...], limit: int = 2000) -> None:
    # 2000 for webhook and flow URLs is our own sanity bound: the reference gives none.
    parts = urlsplit(url or "")
    if parts.scheme not in schemes or not parts.netloc:
        raise ValidationError(name, f"must be a {'/'.join(schemes)} URL, got {url!r}")
    _check_max_len(name, url, limit)


def _check_seconds(name: str, value: int | None, limit: int = TIME_LIMIT_MAX) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= limit):
        raise ValidationError(name, f"must be an integer number of seconds from 1 to {limit}")


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value and value not in allowed:
        raise ValidationError(name, f"must be one of {', '.join(allowed)}, got {value!r}")


def _check_sid(name: str, value: str) -> None:
    if not _SID.match(value or ""):
        raise ValidationError(name, f"is not a valid SID: {value!r}")


def _callback_fields(status_callback: str, events: tuple[str, ...], content_type: str,
                     allowed_events: tuple[str, ...]) -> list[tuple[str, str]]:
    if status_callback:
        _check_url("StatusCallback", status_callback, ("http", "https"))
    if events and not status_callback:
        raise ValidationError("StatusCallbackEvents", "needs a StatusCallback URL")
    for event in events:
        _check_choice("StatusCallbackEvents", event, allowed_events)
    _check_choice("StatusCallbackContentType", content_type, CALLBACK_CONTENT_TYPES)
    out = [("StatusCallback", status_callback)] if status_callback else []
    # Field notes: the array is sent by repeating the key once per event.
    out += [("StatusCallbackEvents[]", event) for event in events]
    if content_type:
        out.append(("StatusCallbackContentType", content_type))
    return out


def check_custom_parameters(params: Mapping[str, str]) -> str:
    """The Voicebot applet's custom parameters (3 pairs, 256 characters), URL-encoded."""
    if len(params) > CUSTOM_PARAMS_MAX:
        raise ValidationError("custom_parameters", f"at most {CUSTOM_PARAMS_MAX} parameters, got {len(params)}")
    encoded = urlencode(params)
    _check_max_len("custom_parameters", encoded, CUSTOM_PARAMS_CHARS_MAX)
    return encoded


def parse_content_type(content_type: str) -> tuple[str, int]:
    """`audio/x-mulaw;rate=8000` -> ("audio/x-mulaw", 8000): the stream's encoding and sample rate."""
    media_type, _, params = content_type.partition(";")
    rate = dict(p.strip().partition("=")[::2] for p in params.split(";") if p.strip()).get("rate", "")
    encoding = STREAM_CONTENT_TYPES.get(media_type.strip().lower())
    if encoding is None or not rate.isdigit() or int(rate) not in SAMPLE_RATES:
        raise ValidationError("content_type", f"must be one of {', '.join(STREAM_CONTENT_TYPES)} with "
                              f"rate={'|'.join(map(str, SAMPLE_RATES))}, got {content_type!r}")
    return encoding, int(rate)


def build_stream_url(base_ws_url: str, *, sample_rate: int = 8000,
                     custom_parameters: Mapping[str, str] | None = None) -> str:
    """The Voicebot URL with `?sample-rate=` and up to 3 custom parameters, all limits checked."""
    _check_url("StreamUrl", base_ws_url, ("ws", "wss"), STREAM_URL_MAX)
    if sample_rate not in SAMPLE_RATES:
        raise ValidationError("sample-rate", f"must be one of {SAMPLE_RATES}, got {sample_rate!r}")
    params = dict(custom_parameters or {})
    if "sample-rate" in params:
        raise ValidationError("custom_parameters", "'sample-rate' is reserved")
    encoded = check_custom_parameters(params)
    query = urlencode({"sample-rate": sample_rate}) + (f"&{encoded}" if encoded else "")
    url = base_ws_url + ("&" if "?" in base_ws_url else "?") + query
    _check_max_len("StreamUrl", url, STREAM_URL_MAX)
    return url


# --- requests ---------------------------------------------------------------------------------

def _connect_url(account: Account) -> str:
    # Field notes: PascalCase path; the `.json` suffix is what makes the answer JSON, not XML.
    return f"{account.api_base}/v1/Accounts/{account.account_sid}/Calls/connect.json"


def _legs_url(account: Account) -> str:
    # Field notes: Legs API lives on the cpaas-api host, lower-case v2 path, JSON bodies.
    return f"{account.cpaas_base}/v2/accounts/{account.account_sid}/legs"


def _common_call_fields(account: Account, number: str, caller_id: str, time_limit: int | None,
                        custom_field: str) -> list[tuple[str, str]]:
    _check_required("CallerId", caller_id)
    _check_seconds("TimeLimit", time_limit)
    _check_max_len("CustomField", custom_field, CUSTOM_FIELD_MAX)
    fields = [("From", dialled_number(number, account.number_form)), ("CallerId", caller_id)]
    if time_limit is not None:
        fields.append(("TimeLimit", str(time_limit)))
    if custom_field:
        fields.append(("CustomField", custom_field))
    return fields


def connect_to_bot(account: Account, call: BotCall) -> Request[CallInfo]:
    fields = _common_call_fields(account, call.number, call.caller_id, call.time_limit, call.custom_field)
    _check_url("StreamUrl", call.stream_url, ("ws", "wss"), STREAM_URL_MAX)
    _check_choice("RecordingChannels", call.recording_channels, RECORDING_CHANNELS)
    _check_max_len("StreamName", call.stream_name, STREAM_NAME_MAX)
    fields += [("StreamUrl", call.stream_url), ("StreamType", "bidirectional")]
    if call.record:
        fields.append(("Record", "true"))
    if call.recording_channels:
        fields.append(("RecordingChannels", call.recording_channels))
    if call.stream_name:
        fields.append(("StreamName", call.stream_name))
    fields += _callback_fields(call.status_callback, call.status_callback_events,
                               call.status_callback_content_type, CALLBACK_EVENTS)
    return Request("POST", _connect_url(account), parse_call, form=tuple(fields))


def connect_to_flow(account: Account, call: FlowCall) -> Request[CallInfo]:
    fields = _common_call_fields(account, call.number, call.caller_id, call.time_limit, call.custom_field)
    _check_url("Url", call.flow_url, ("http", "https"))
    _check_choice("CallType", call.call_type, ("trans",))
    _check_seconds("TimeOut", call.timeout)
    fields.append(("Url", call.flow_url))
    if call.call_type:
        fields.append(("CallType", call.call_type))
    if call.timeout is not None:
        fields.append(("TimeOut", str(call.timeout)))
    fields += _callback_fields(call.status_callback, call.status_callback_events,
                               call.status_callback_content_type, FLOW_CALLBACK_EVENTS)
    return Request("POST", _connect_url(account), parse_call, form=tuple(fields))


def create_leg(account: Account, leg: NewLeg, *,
               event_schemes: tuple[str, ...] = LEG_EVENT_SCHEMES) -> Request[LegInfo]:
    _check_required("exophone", leg.exophone)
    # We implement the HTTPS form of leg events (field notes); the gRPC proto is not published.
    _check_url("leg_event_endpoint", leg.leg_event_endpoint, event_schemes)
    _check_seconds("ring_timeout", leg.ring_timeout)
    _check_seconds("time_limit", leg.time_limit)
    _check_max_len("custom_param", leg.custom_param, CUSTOM_FIELD_MAX)
    body: dict[str, Any] = {
        "contact_uri": dialled_number(leg.number, account.number_form, field_name="contact_uri"),
        "exophone": leg.exophone,
        "leg_event_endpoint": leg.leg_event_endpoint,
    }
    optional = {"custom_param": leg.custom_param, "ring_timeout": leg.ring_timeout,
                "time_limit": leg.time_limit}
    body.update({k: v for k, v in optional.items() if v not in (None, "")})
    if leg.amd_async and not leg.amd:
        raise ValidationError("async_amd", "only with amd_enable")
    if leg.amd:
        body.update(amd_enable=True, async_amd=leg.amd_async)
    return Request("POST", _legs_url(account), parse_leg, json=body)


def call_details(account: Account, call_sid: str) -> Request[CallDetails]:
    """Exotel's fallback when callbacks are late or lost (its own advice)."""
    _check_sid("CallSid", call_sid)
    # Field notes: PascalCase path, and the `.json` suffix makes the answer JSON.
    url = f"{account.api_base}/v1/Accounts/{account.account_sid}/Calls/{call_sid}.json"
    return Request("GET", url, parse_call_details, idempotent=True)


def leg_details(account: Account, leg_sid: str) -> Request[CallDetails]:
    """Get Leg: `GET /v2/accounts/{sid}/legs/{leg_sid}` (Exotel's Legs reference)."""
    _check_sid("leg_sid", leg_sid)
    return Request("GET", f"{_legs_url(account)}/{leg_sid}", parse_leg_details, idempotent=True)


def leg_action(account: Account, leg_sid: str, action: str, body: Mapping[str, Any]) -> Request[ActionAccepted]:
    """A Legs action; `action` is e.g. `start_stream`, or "" for the ExoML endpoint (hang-up)."""
    _check_sid("leg_sid", leg_sid)
    url = f"{_legs_url(account)}/{leg_sid}/actions" + (f"/{action}" if action else "")
    return Request("POST", url, parse_action, json=dict(body))


def start_stream(account: Account, leg_sid: str, *, url: str, sample_rate: int = 8000,
                 direction: str = "bidirectional") -> Request[ActionAccepted]:
    _check_url("url", url, ("ws", "wss"), STREAM_URL_MAX)
    _check_choice("direction", direction, STREAM_DIRECTIONS)
    if sample_rate not in SAMPLE_RATES:
        raise ValidationError("content_type", f"sample rate must be one of {SAMPLE_RATES}")
    body = {"direction": direction, "url": url, "content_type": f"audio/x-l16;rate={sample_rate}"}
    return leg_action(account, leg_sid, "start_stream", body)


def start_say(account: Account, leg_sid: str, text: str, loop: int = 0) -> Request[ActionAccepted]:
    _check_required("text", text)
    if isinstance(loop, bool) or not isinstance(loop, int) or loop < 0:
        raise ValidationError("loop", "must be a non-negative integer")
    return leg_action(account, leg_sid, "start_say", {"text": text, "loop": loop})


def stop_say(account: Account, leg_sid: str) -> Request[ActionAccepted]:
    return leg_action(account, leg_sid, "stop_say", {})


def hangup_leg(account: Account, leg_sid: str) -> Request[ActionAccepted]:
    return leg_action(account, leg_sid, "", {"exoml": HANGUP_EXOML})


def create_bridge(account: Account, leg_sids: Sequence[str], *, bridge_event_endpoint: str,
                  event_schemes: tuple[str, ...] = LEG_EVENT_SCHEMES) -> Request[BridgeInfo]:
    """Join active legs (a caller and an agent): Exotel's `POST /v2/accounts/{sid}/bridges` (Legs & Bridges
    API; not in our reference, which only names bridges). Its events (`bridge_created`, `leg_joined_bridge`,
    `bridge_terminal`, ...) go to `bridge_event_endpoint`, the HTTPS form like leg events."""
    if len(leg_sids) < 2:
        raise ValidationError("leg_sids", "a bridge joins at least two legs")
    for leg_sid in leg_sids:
        _check_sid("leg_sids", leg_sid)
    _check_url("bridge_event_endpoint", bridge_event_endpoint, event_schemes)
    url = f"{account.cpaas_base}/v2/accounts/{account.account_sid}/bridges"
    return Request("POST", url, parse_bridge, json={"leg_sids": list(leg_sids),
                                                     "bridge_event_endpoint": bridge_event_endpoint})


def active_streams(account: Account) -> Request[ActiveStreams]:
    # Field notes: this path is case-sensitive, PascalCase, and has no `.json` suffix.
    url = f"{account.api_base}/v1/Accounts/{account.account_sid}/ActiveStreams"
    return Request("GET", url, parse_active_streams, idempotent=True)
