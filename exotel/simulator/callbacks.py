"""HTTP requests the simulator makes to the app: status callbacks, Passthru, leg events, stream URLs.

Status callbacks (field notes): POST to `StatusCallback` for each requested event (`ringing`,
`answered`, `terminal`); with no events requested, only `terminal` is sent. The body is JSON when
`StatusCallbackContentType` is `application/json`, multipart when `multipart/form-data`, and
urlencoded otherwise (silent in the reference). In forms the per-leg details are flattened as
`Legs[0][Status]`; in JSON `Legs` is a list. Answers other than 2xx (or none within 15 s) are
retried twice, `callback_retry_delay` apart.

Passthru (flow mode): one GET to the flow's Passthru URL when the stream ends, whichever side ended
it (silent in the reference), in the flow's style: "flat" lower-case fields, "nested" `Stream[...]`
keys, or "json" with one JSON `Stream` value. `CustomField` (`customfield` when flat) is included:
the reference says the flow passes it on through Passthru. Values chosen for the unpublished sets:
status `completed` | `failed`; disconnectedby `caller` | `bot` | `system` (`user` for the caller in
the nested and JSON forms, as the field notes' example says); disposition and detailedstatus are
`caller-hangup` | `bot-hangup` | `system-hangup` | `stream-failed` and `StreamEndedBy<Side>`.

Leg events: the HTTPS JSON form of the field notes, with `X-Exotel-Event-Sid` and
`X-Exotel-Request-Id: <event_sid>-<attempt>`; up to 3 attempts on 408, 429, 5xx or a timeout,
1 s timeout each; any 2xx is an ack, any other answer is final. A `grpc://` endpoint (the
reference's example; the proto is not published) is served in the same form at the config's
`grpc_event_target`; without one, each event is logged as undelivered.

Dynamic Voicebot URLs (`http(s)://` returning `{"url": "wss://..."}`): a GET with query
`CallSid`, `CallFrom`, `CallTo`, `Direction`, `CustomField` (the reference names none; these
mirror Exotel's Passthru names), 10 s timeout.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp

from exotel.simulator.log import WireLog

if TYPE_CHECKING:
    from exotel.simulator.calls import SimCall

STATUS_TIMEOUT = aiohttp.ClientTimeout(total=15)
LEG_EVENT_TIMEOUT = aiohttp.ClientTimeout(total=1)
RETRYABLE = {408, 429}


def timestamp(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S") if when else ""


def now() -> datetime:
    return datetime.now(UTC)


class Deliveries:
    def __init__(self, session: aiohttp.ClientSession, log: WireLog, retry_delay: float,
                 grpc_event_target: str = "") -> None:
        self.session, self.log, self.retry_delay = session, log, retry_delay
        self.grpc_event_target = grpc_event_target

    async def _attempt(self, type_: str, method: str, url: str, attempt: int, log_body: Any,
                       **kwargs: Any) -> int | None:
        record: dict[str, Any] = {"type": type_, "method": method, "url": url, "attempt": attempt, "body": log_body}
        if "headers" in kwargs:
            record["headers"] = kwargs["headers"]
        try:
            async with self.session.request(method, url, **kwargs) as response:
                await response.read()
                self.log.write("callback", status=response.status, **record)
                return response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.log.write("callback", error=repr(exc), **record)
            return None

    # --- status callbacks ----------------------------------------------------------------------

    async def status(self, call: SimCall, event_type: str) -> None:
        fields = status_fields(call, event_type)
        for attempt in (1, 2, 3):  # field notes: Exotel retries up to 2 times
            kwargs = _status_body(fields, call.callback_content_type)
            status = await self._attempt("status", "POST", call.status_callback, attempt, fields,
                                         timeout=STATUS_TIMEOUT, **kwargs)
            if status is not None and 200 <= status < 300:
                return
            if attempt < 3:
                await asyncio.sleep(self.retry_delay)

    # --- Passthru ------------------------------------------------------------------------------

    async def passthru(self, call: SimCall, url: str, style: str, recording_url: str) -> None:
        params = passthru_params(call, style, recording_url)
        await self._attempt("passthru", "GET", url, 1, params, params=params, timeout=STATUS_TIMEOUT)

    # --- leg events ----------------------------------------------------------------------------

    async def leg_event(self, call: SimCall, name: str, *, action_sid: str = "",
                        action_custom_parameter: str = "", event_data: dict[str, Any] | None = None) -> None:
        event_sid = secrets.token_hex(16)
        lifecycle = name.startswith("leg_")
        body = {
            "event_sid": event_sid,
            "event_type": "leg_lifecycle_event" if lifecycle else "leg_action_event",
            "event_name": name, "event_timestamp": now().isoformat(),
            "action_sid": action_sid, "action_custom_parameter": action_custom_parameter,
            "event_data": event_data or {},
            "data": {"leg_sid": call.sid, "account_sid": call.account_sid, "contact_uri": call.dialled,
                     "exophone": call.caller_id, "state": call.leg_state, "custom_param": call.custom_param},
        }
        await self._event("leg_event", call.leg_event_endpoint, body)

    async def bridge_event(self, bridge: Any, name: str, *, state: str) -> None:
        """A bridge's lifecycle event (bridges.py), to the bridge's endpoint, in the leg events' form."""
        body = {
            "event_sid": secrets.token_hex(16), "event_type": "bridge_lifecycle_event", "event_name": name,
            "event_timestamp": now().isoformat(), "event_data": {},
            "data": {"bridge_sid": bridge.sid, "account_sid": bridge.account_sid, "state": state,
                     "leg_sids": [leg.sid for leg in bridge.legs]},
        }
        await self._event("bridge_event", bridge.endpoint, body)

    async def _event(self, type_: str, endpoint: str, body: dict[str, Any]) -> None:
        """POST an event with Exotel's headers, up to 3 attempts on 408/429/5xx and timeouts."""
        url, event_sid = endpoint, body["event_sid"]
        if url.startswith("grpc://"):
            url = self.grpc_event_target
            if not url:
                self.log.write("callback", type=type_, method="POST", url=endpoint,
                               attempt=0, body=body, error="grpc:// endpoint and no grpc_event_target configured")
                return
        for attempt in (1, 2, 3):
            headers = {"X-Exotel-Event-Sid": event_sid, "X-Exotel-Request-Id": f"{event_sid}-{attempt}"}
            status = await self._attempt(type_, "POST", url, attempt, body,
                                         json=body, headers=headers, timeout=LEG_EVENT_TIMEOUT)
            if status is not None and (200 <= status < 300 or (status < 500 and status not in RETRYABLE)):
                return
            if attempt < 3:
                await asyncio.sleep(self.retry_delay)

    # --- dynamic stream URL --------------------------------------------------------------------

    async def resolve_stream_url(self, call: SimCall, url: str) -> str:
        """A Voicebot URL as a WebSocket URL, asking an http(s) endpoint for one if need be."""
        if url.startswith(("ws://", "wss://")):
            return url
        params = {"CallSid": call.sid, "CallFrom": call.number, "CallTo": call.caller_id,
                  "Direction": "outbound-api", "CustomField": call.custom_field}
        try:
            async with self.session.get(url, params=params, timeout=aiohttp.ClientTimeout(total=10)) as response:
                data = await response.json(content_type=None)
                self.log.write("callback", type="stream_url", method="GET", url=url, attempt=1,
                               body=params, status=response.status, answer=data)
                return str(data["url"]) if response.status == 200 else ""
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            self.log.write("callback", type="stream_url", method="GET", url=url, attempt=1, body=params,
                           error=repr(exc))
            return ""


def status_fields(call: SimCall, event_type: str) -> dict[str, Any]:
    terminal = event_type == "terminal"
    duration = int((call.ended_at - call.answered_at).total_seconds()) if call.ended_at and call.answered_at else 0
    fields: dict[str, Any] = {
        "CallSid": call.sid, "Status": call.status, "DateUpdated": timestamp(now()),
        "RecordingUrl": call.recording_url if terminal else "", "EventType": event_type,
        "DateCreated": timestamp(call.created), "To": call.caller_id, "From": call.number,
        "PhoneNumberSid": call.caller_id, "StartTime": timestamp(call.created),
        "EndTime": timestamp(call.ended_at), "ConversationDuration": duration,
        "Direction": "outbound-api",
        "Legs": [{"OnCallDuration": duration, "Status": call.status,
                  "AnsweredBy": answered_by(call)}],
    }
    if terminal:
        fields["CustomField"] = call.custom_field  # field notes: terminal only
    return fields


def answered_by(call: SimCall) -> str:
    """The verdict once the plan's detection time has passed since the answer; "" before."""
    if call.answered_at is None or (now() - call.answered_at).total_seconds() < call.answered_by_after:
        return ""
    return call.answered_by


def _status_body(fields: dict[str, Any], content_type: str) -> dict[str, Any]:
    if content_type == "application/json":
        return {"json": fields}
    flat = [(k, str(v)) for k, v in fields.items() if k != "Legs"]
    for index, leg in enumerate(fields["Legs"]):
        flat += [(f"Legs[{index}][{k}]", str(v)) for k, v in leg.items()]
    if content_type == "multipart/form-data":
        form = aiohttp.FormData(default_to_multipart=True)
        for key, value in flat:
            form.add_field(key, value)
        return {"data": form}
    return {"data": flat}


def passthru_params(call: SimCall, style: str, recording_url: str) -> dict[str, str]:
    outcome = call.stream_outcome
    ended_by = outcome.ended_by if outcome else "system"
    status = "failed" if ended_by == "failed" else "completed"
    side = {"caller": "caller", "bot": "bot"}.get(ended_by, "system")
    disposition = "stream-failed" if ended_by == "failed" else f"{side}-hangup"
    detailed = f"StreamEndedBy{side.title()}" if ended_by != "failed" else "StreamFailed"
    duration = str(int(outcome.duration)) if outcome else "0"
    error = outcome.reason if outcome and ended_by == "failed" else ""
    dialled = {"DialWhomNumber": call.dial_whom_number} if call.dial_whom_number else {}
    if style == "flat":
        return {"callsid": call.sid, "streamsid": call.stream_sid, "streamurl": call.stream_url,
                "status": status, "duration": duration, "recordingurl": recording_url, "error": error,
                "disposition": disposition, "disconnectedby": side, "detailedstatus": detailed,
                "customfield": call.custom_field, **{k.lower(): v for k, v in dialled.items()}}
    stream = {"StreamSID": call.stream_sid, "Status": status, "Duration": duration,
              "RecordingUrl": recording_url, "StreamUrl": call.stream_url,
              "DisconnectedBy": "user" if side == "caller" else side, "DetailedStatus": detailed,
              "Error": error}
    params = {"CallSid": call.sid, "From": call.number, "To": call.caller_id, "Direction": "outbound-api",
              "flow_id": call.flow_id, "CustomField": call.custom_field, **dialled}
    if style == "nested":
        return params | {f"Stream[{k}]": v for k, v in stream.items()}
    return params | {"Stream": json.dumps(stream)}
