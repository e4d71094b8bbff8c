"""The simulator's HTTP API: Exotel's endpoints, with Exotel's auth, validation and answer shapes.

Routes (one server answers for both the api and cpaas-api hosts):
- POST /v1/Accounts/{sid}/Calls/connect.json -> `{"Call": {...}}` (PascalCase, field notes);
  without `.json` -> XML `<TwilioResponse><Call>`; POST /v1/accounts/{sid}/calls/connect[.json]
  -> `{"call": {...}}` (lower-case, reference). Fields are accepted in either spelling.
- GET /v1/Accounts/{sid}/ActiveStreams (JSON, or XML per config) and /v1/accounts/{sid}/activestreams.
- GET /v1/Accounts/{sid}/Calls/{call_sid}.json (Call Details) -> `{"Call": {...}}` as it stands now,
  with `Status`, `StartTime`, `EndTime`, `Duration` (seconds on the call after the answer; null while
  live or when never answered), `Price` (null until the config's price delay after the end),
  `RecordingUrl` and `AnsweredBy` (the plan's verdict once its
  `amd_delay` has passed since the answer).
- GET /v2/accounts/{sid}/legs/{leg} (Get Leg) -> the v2 envelope with `state`, `terminal_status`
  (the call status once terminated), `start_time`, `end_time` and `on_call_duration_ms`.
- POST /v2/accounts/{sid}/legs, .../legs/{leg}/actions/{start_stream|start_say|stop_say}, and
  .../legs/{leg}/actions with `{"exoml": "<Flow><Hangup/></Flow>"}` (the only ExoML simulated):
  202 with the v2 envelope; errors in the v2 error envelope. The reference's own examples pass:
  a `grpc://` leg_event_endpoint (events go to the config's `grpc_event_target`), `stop_say`
  with no body, `content_type: audio/x-mulaw;rate=8000` (a μ-law stream), `direction:
  unidirectional` (a receive-only stream).
- POST /v2/accounts/{sid}/bridges: join answered legs (bridges.py), 202 with the bridge's sid.
- Control: PUT /_sim/flows/{flow_id}, PUT /_sim/faults (a JSON list as in the config), PUT
  /_sim/price (the config's "price" object), GET
  /_sim/calls, GET /_sim/health, GET /_sim/recordings/{call_sid}.wav. No auth on these.

Validation is `exotel.wire`'s, the same limits the client checks, answered with 400 and a
RestException naming the field. Auth is HTTP Basic with the account's key and token: unknown or
wrong credentials get 401. A national `From` with a leading 0 is read as an Indian number.
Choices: unknown legs answer 404, actions on an ended leg 409; a flow unknown when the call is
answered fails that call (the flow URL is not checked at dial time, as it is only a URL).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web

from exotel import wire
from exotel.errors import ValidationError
from exotel.simulator import bridges
from exotel.simulator.callbacks import answered_by, timestamp
from exotel.simulator.calls import SimCall, Simulator, StreamLimitReached
from exotel.simulator.config import ConfigError, parse_fault, parse_flow, parse_pricing
from exotel.simulator.stream import stream_parameters
from exotel.wire.requests import e164_from_dialled

Handler = Callable[[web.Request, dict[str, Any]], Awaitable[web.Response]]
SIM = web.AppKey("simulator", Simulator)
_request_ids = itertools.count(1)


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str = "", retry_after: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.retry_after = status, message, code or str(status), retry_after


def _error_response(style: str, error: ApiError) -> web.Response:
    headers = {"Retry-After": error.retry_after} if error.retry_after else {}
    if style == "v2":
        body = {"request_id": secrets.token_hex(16), "http_code": error.status,
                "response": {"error": {"code": error.code, "message": error.message}}}
        return web.json_response(body, status=error.status, headers=headers)
    if style == "xml":
        xml = (f"<TwilioResponse><RestException><Status>{error.status}</Status><Message>{escape(error.message)}"
               f"</Message><Code>{escape(error.code)}</Code></RestException></TwilioResponse>")
        return web.Response(text=xml, status=error.status, content_type="application/xml", headers=headers)
    body = {"RestException": {"Status": error.status, "Message": error.message, "Code": error.code}}
    return web.json_response(body, status=error.status, headers=headers)


def _check_auth(sim: Simulator, request: web.Request, account_sid: str) -> None:
    header = request.headers.get("Authorization", "")
    try:
        key, _, token = base64.b64decode(header.removeprefix("Basic "), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        key = token = ""
    if not header.startswith("Basic ") or sim.accounts.get(account_sid) != (key, token):
        raise ApiError(401, "Authentication failed: check the API key and token", "401")


async def _body(request: web.Request, style: str) -> dict[str, Any]:
    if request.method == "GET":
        return {}
    if style == "v2":
        if not (await request.read()).strip():
            return {}  # the reference's own stop_say sends no body
        try:
            data = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "Body is not JSON") from None
        if not isinstance(data, dict):
            raise ApiError(400, "Body is not a JSON object")
        return data
    form = await request.post()
    fields: dict[str, Any] = {}
    for key in form:
        values = [str(v) for v in form.getall(key)]
        fields[key.lower()] = values if len(values) > 1 or key.endswith("[]") else values[0]
    return fields


def api(endpoint: str, style: str | Callable[[web.Request], str], handler: Handler) -> Handler:
    """Wrap an Exotel endpoint: log, authenticate, apply faults, answer errors in its style."""

    async def wrapped(request: web.Request) -> web.Response:
        sim = request.app[SIM]
        answer_style = style(request) if callable(style) else style
        request_id = next(_request_ids)
        account_sid = request.match_info["sid"]
        fault_kind = ""
        try:
            body = await _body(request, answer_style)
        except ApiError as error:
            body = {"unreadable": error.message}
        sim.log.write("request", id=request_id, method=request.method, path=request.path,
                      query=dict(request.query), account_sid=account_sid, body=body)
        try:
            _check_auth(sim, request, account_sid)
            if "unreadable" in body:
                raise ApiError(400, body["unreadable"])
            caller_id = str(body.get("callerid") or body.get("exophone") or "")
            fault = sim.take_fault(endpoint, e164_from_dialled(caller_id) if caller_id else "")
            fault_kind = fault.kind if fault else ""
            if fault and fault.kind == "status":
                raise ApiError(fault.status, fault.message or f"Simulated error {fault.status}", fault.code,
                               fault.retry_after)
            if fault and fault.kind == "slow":
                await asyncio.sleep(fault.delay)
            response = await handler(request, body)
            if fault and fault.kind == "timeout":
                await asyncio.sleep(fault.delay)  # the work is done; the answer never comes in time
        except ApiError as error:
            response = _error_response(answer_style, error)
        except ValidationError as error:
            response = _error_response(answer_style, ApiError(400, str(error), "400"))
        sim.log.write("response", id=request_id, status=response.status, fault=fault_kind)
        return response

    return wrapped


# --- v1: calls/connect -------------------------------------------------------------------------

def _int_field(fields: dict[str, Any], name: str, wire_name: str) -> int | None:
    value = fields.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValidationError(wire_name, f"must be an integer, got {value!r}") from None


def _events(fields: dict[str, Any]) -> tuple[str, ...]:
    value = fields.get("statuscallbackevents[]", fields.get("statuscallbackevents", ()))
    events = [value] if isinstance(value, str) else list(value)
    return tuple(e for event in events for e in (("answered", "terminal") if event == "both" else (event,)))


def _connect_style(request: web.Request) -> str:
    if request.path.startswith("/v1/Accounts/"):
        return "pascal" if request.path.endswith(".json") else "xml"
    return "lower"


async def connect(request: web.Request, fields: dict[str, Any]) -> web.Response:
    sim, sid = request.app[SIM], request.match_info["sid"]
    account = wire.Account(sid, "-", "-", base_url_override=sim.base_url)
    # A leading 0 is the national form (field notes); the simulator reads it as an Indian number.
    number, caller_id = e164_from_dialled(str(fields.get("from", ""))), str(fields.get("callerid", ""))
    common = {"number": number, "caller_id": caller_id, "custom_field": str(fields.get("customfield", "")),
              "time_limit": _int_field(fields, "timelimit", "TimeLimit"),
              "status_callback": str(fields.get("statuscallback", "")), "status_callback_events": _events(fields),
              "status_callback_content_type": str(fields.get("statuscallbackcontenttype", ""))}
    call = SimCall(sid="", account_sid=sid, mode="bot", number=number, dialled=str(fields.get("from", "")),
                   caller_id=caller_id, custom_field=common["custom_field"], status_callback=common["status_callback"],
                   callback_events=common["status_callback_events"],
                   callback_content_type=common["status_callback_content_type"], time_limit=common["time_limit"])
    if fields.get("streamurl") and fields.get("url"):
        raise ValidationError("StreamUrl", "give StreamUrl (Voice AI) or Url (flow), not both")
    if fields.get("streamurl"):
        if fields.get("streamtype", "") not in wire.requests.STREAM_DIRECTIONS:
            raise ValidationError("StreamType", "must be bidirectional or unidirectional")
        call.bidirectional = fields["streamtype"] == "bidirectional"
        wire.requests.check_custom_parameters(stream_parameters(str(fields["streamurl"]))[1])
        bot = wire.BotCall(stream_url=str(fields["streamurl"]), record=fields.get("record") == "true",
                           recording_channels=str(fields.get("recordingchannels", "")),
                           stream_name=str(fields.get("streamname", "")), **common)
        wire.connect_to_bot(account, bot)
        call.stream_url, call.record = bot.stream_url, bot.record
        call.recording_channels = bot.recording_channels or "single"
    elif fields.get("url"):
        flow = wire.FlowCall(flow_url=str(fields["url"]), call_type=str(fields.get("calltype", "")),
                             timeout=_int_field(fields, "timeout", "TimeOut"), **common)
        wire.connect_to_flow(account, flow)
        call.mode, call.flow_id = "flow", flow.flow_url.rstrip("/").rsplit("/", 1)[-1]
        call.ring_timeout = flow.timeout
    else:
        raise ValidationError("StreamUrl", "StreamUrl or Url is required")
    call.sid = secrets.token_hex(16)
    try:
        sim.dial(call)
    except StreamLimitReached:
        raise ApiError(429, "Maximum allowed streams reached for this account", "StreamLimitExceeded") from None
    return _call_response(_connect_style(request), call)


def _call_response(style: str, call: SimCall) -> web.Response:
    created = timestamp(call.created)
    if style == "lower":
        return web.json_response({"call": {
            "sid": call.sid, "status": "in-progress", "from": call.number, "phonenumbersid": call.caller_id,
            "direction": "outbound-api", "datecreated": created, "recordingurl": None}})
    fields = {"Sid": call.sid, "ParentCallSid": "", "DateCreated": created, "DateUpdated": created,
              "AccountSid": call.account_sid, "To": call.caller_id, "From": call.number,
              "PhoneNumberSid": call.caller_id, "Status": "in-progress", "StartTime": created, "EndTime": None,
              "Duration": None, "Price": None, "Direction": "outbound-api", "AnsweredBy": None,
              "Uri": f"/v1/Accounts/{call.account_sid}/Calls/{call.sid}.json", "RecordingUrl": None}
    if style == "pascal":
        return web.json_response({"Call": fields})
    inner = "".join(f"<{k}>{escape(str(v or ''))}</{k}>" for k, v in fields.items())
    return web.Response(text=f"<TwilioResponse><Call>{inner}</Call></TwilioResponse>",
                        content_type="application/xml")


def _active_streams_style(request: web.Request) -> str:
    sim = request.app[SIM]
    return "xml" if request.path.endswith("ActiveStreams") and sim.config.active_streams_format == "xml" else "json"


async def active_streams(request: web.Request, _: dict[str, Any]) -> web.Response:
    sim, sid = request.app[SIM], request.match_info["sid"]
    active, limit = sim.live_streams(sid), sim.config.max_streams_for(sid)
    if _active_streams_style(request) == "xml":
        xml = (f"<TwilioResponse><Stream><ActiveStreamCount>{active}</ActiveStreamCount>"
               f"<ThrottleLimit>{limit}</ThrottleLimit></Stream></TwilioResponse>")
        return web.Response(text=xml, content_type="application/xml")
    return web.json_response({"status": "success", "active_streams": active, "max_allowed_streams": limit,
                              "account_sid": sid})


def _call_of(request: web.Request, key: str) -> SimCall:
    call = request.app[SIM].calls.get(request.match_info[key])
    if not call or call.account_sid != request.match_info["sid"]:
        raise ApiError(404, "Call not found" if key == "call_sid" else "Leg not found")
    return call


def _on_call_seconds(call: SimCall) -> float | None:
    if not call.answered_at or not call.ended_at:
        return None
    return (call.ended_at - call.answered_at).total_seconds()


async def call_details(request: web.Request, _: dict[str, Any]) -> web.Response:
    call = _call_of(request, "call_sid")
    if call.mode == "leg":
        raise ApiError(404, "Call not found")  # a leg is read with Get Leg
    on_call = _on_call_seconds(call)
    return web.json_response({"Call": {
        "Sid": call.sid, "ParentCallSid": "", "DateCreated": timestamp(call.created),
        "DateUpdated": timestamp(call.ended_at or call.answered_at or call.created), "AccountSid": call.account_sid,
        "To": call.caller_id, "From": call.number, "PhoneNumberSid": call.caller_id, "Status": call.status,
        "StartTime": timestamp(call.created), "EndTime": timestamp(call.ended_at) or None,
        "Duration": None if on_call is None else round(on_call), "Price": request.app[SIM].price(call),
        "Direction": "outbound-api", "AnsweredBy": answered_by(call) or None,
        "Uri": f"/v1/Accounts/{call.account_sid}/Calls/{call.sid}.json", "RecordingUrl": call.recording_url or None,
    }})


# --- v2: legs ----------------------------------------------------------------------------------

async def get_leg(request: web.Request, _: dict[str, Any]) -> web.Response:
    call = _call_of(request, "leg")
    if call.mode != "leg":
        raise ApiError(404, "Leg not found")
    on_call = _on_call_seconds(call)
    ended = call.leg_state == "terminated"
    return web.json_response({"request_id": secrets.token_hex(16), "method": "GET", "http_code": 200, "response": {
        "error_data": None, "data": {
            "leg_sid": call.sid, "account_sid": call.account_sid, "contact_uri": call.dialled,
            "exophone": call.caller_id, "caller_id": call.caller_id, "direction": "outbound", "network_type": "pstn",
            "time_limit": call.time_limit, "state": call.leg_state, "terminal_status": call.status if ended else "",
            "date_created": timestamp(call.created), "start_time": timestamp(call.created),
            "end_time": timestamp(call.ended_at), "recording_url": call.recording_url,
            "on_call_duration_ms": 0 if on_call is None else round(on_call * 1000),
        }}})


def _accepted(data: dict[str, Any] | None = None, request_id: str = "") -> web.Response:
    request_id = request_id or secrets.token_hex(16)
    return web.json_response({"request_id": request_id, "http_code": 202, "response": {"data": data or {}}},
                             status=202)


async def create_leg(request: web.Request, body: dict[str, Any]) -> web.Response:
    sim, sid = request.app[SIM], request.match_info["sid"]
    account = wire.Account(sid, "-", "-", base_url_override=sim.base_url)
    ring_timeout = body.get("ring_timeout", body.get("timeout"))  # both spellings are documented
    leg = wire.NewLeg(number=e164_from_dialled(str(body.get("contact_uri", ""))),
                      exophone=str(body.get("exophone", "")),
                      leg_event_endpoint=str(body.get("leg_event_endpoint", "")),
                      custom_param=str(body.get("custom_param", "")), ring_timeout=ring_timeout,
                      time_limit=body.get("time_limit"), amd=body.get("amd_enable") is True,
                      amd_async=body.get("async_amd") is True)
    wire.create_leg(account, leg, event_schemes=wire.requests.LEG_EVENT_SCHEMES_ACCEPTED)
    call = SimCall(sid=secrets.token_hex(16), account_sid=sid, mode="leg", number=leg.number,
                   dialled=str(body["contact_uri"]), caller_id=leg.exophone, custom_param=leg.custom_param,
                   leg_event_endpoint=leg.leg_event_endpoint, ring_timeout=leg.ring_timeout,
                   time_limit=leg.time_limit, amd="async" if leg.amd_async else "sync" if leg.amd else "")
    try:
        sim.dial(call)
    except StreamLimitReached:
        raise ApiError(429, "Maximum allowed streams reached for this account", "StreamLimitExceeded") from None
    return _accepted({"leg_sid": call.sid, "account_sid": sid, "contact_uri": call.dialled,
                      "exophone": call.caller_id, "state": "connecting", "custom_param": call.custom_param})


async def leg_action(request: web.Request, body: dict[str, Any]) -> web.Response:
    sim, sid = request.app[SIM], request.match_info["sid"]
    call = sim.calls.get(request.match_info["leg"])
    if not call or call.mode != "leg" or call.account_sid != sid:
        raise ApiError(404, "Leg not found")
    if call.leg_state == "terminated":
        raise ApiError(409, "Leg has ended")
    # The action's request id is the `action_sid` its later events carry.
    action, action_sid = request.match_info.get("action", ""), secrets.token_hex(16)
    account = wire.Account(sid, "-", "-", base_url_override=sim.base_url)
    if action == "start_stream":
        encoding, rate = wire.requests.parse_content_type(str(body.get("content_type", "audio/x-l16;rate=8000")))
        direction = str(body.get("direction", "bidirectional"))
        wire.start_stream(account, call.sid, url=str(body.get("url", "")), sample_rate=rate, direction=direction)
        wire.requests.check_custom_parameters(stream_parameters(str(body["url"]))[1])
        sim.start_stream(call, str(body["url"]), action_sid, sample_rate=rate, encoding=encoding,
                         bidirectional=direction == "bidirectional")
    elif action == "start_say":
        wire.start_say(account, call.sid, str(body.get("text", "")), body.get("loop", 0))
        sim.start_say(call, str(body["text"]), int(body.get("loop", 0)), action_sid)
    elif action == "stop_say":
        sim.stop_say(call)
    elif action == "" and str(body.get("exoml", "")).replace(" ", "") == wire.requests.HANGUP_EXOML:
        sim.hangup(call)
    else:
        raise ApiError(400, f"Unsupported action {action or body.get('exoml')!r}")
    return _accepted(request_id=action_sid)


async def create_bridge(request: web.Request, body: dict[str, Any]) -> web.Response:
    sim, sid = request.app[SIM], request.match_info["sid"]
    leg_sids = body.get("leg_sids")
    if not isinstance(leg_sids, list) or not all(isinstance(leg, str) for leg in leg_sids):
        raise ApiError(400, "leg_sids must be a list of leg sids")
    account = wire.Account(sid, "-", "-", base_url_override=sim.base_url)
    wire.create_bridge(account, leg_sids, bridge_event_endpoint=str(body.get("bridge_event_endpoint", "")),
                       event_schemes=wire.requests.LEG_EVENT_SCHEMES_ACCEPTED)
    try:
        bridge = bridges.create_bridge(sim, sid, leg_sids, str(body["bridge_event_endpoint"]))
    except bridges.BridgeRefused as refused:
        raise ApiError(409, str(refused)) from None
    return _accepted({"bridge_sid": bridge.sid, "account_sid": sid, "leg_sids": leg_sids,
                      "created_at": timestamp(bridge.created),
                      "bridge_event_endpoint": bridge.endpoint})


# --- control endpoints -------------------------------------------------------------------------

async def put_flow(request: web.Request) -> web.Response:
    try:
        flow = parse_flow(await request.json())
    except (ValueError, ConfigError, AttributeError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    request.app[SIM].flows[request.match_info["flow_id"]] = flow
    request.app[SIM].log.write("control", action="put_flow", flow_id=request.match_info["flow_id"],
                               flow=flow.__dict__)
    return web.json_response({"flow_id": request.match_info["flow_id"], **flow.__dict__})


async def put_faults(request: web.Request) -> web.Response:
    try:
        faults = [parse_fault(f) for f in await request.json()]
    except (ValueError, ConfigError, TypeError, AttributeError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    request.app[SIM].set_faults(faults)
    request.app[SIM].log.write("control", action="put_faults", faults=[f.__dict__ for f in faults])
    return web.json_response({"faults": len(faults)})


async def put_price(request: web.Request) -> web.Response:
    try:
        pricing = parse_pricing(await request.json())
    except (ValueError, ConfigError, TypeError, AttributeError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    request.app[SIM].pricing = pricing
    request.app[SIM].log.write("control", action="put_price", per_minute=str(pricing.per_minute),
                               delay=pricing.delay)
    return web.json_response({"per_minute": str(pricing.per_minute), "delay": pricing.delay})


async def list_calls(request: web.Request) -> web.Response:
    return web.json_response([call.summary() for call in request.app[SIM].calls.values()])


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "calls": len(request.app[SIM].calls)})


async def recording(request: web.Request) -> web.Response:
    call = request.app[SIM].calls.get(request.match_info["call_sid"])
    if not call or not call.recording_url or not call.recording:
        raise web.HTTPNotFound()
    return web.Response(body=call.recording.wav(call.recording_channels), content_type="audio/wav")


def build_app(sim: Simulator) -> web.Application:
    app = web.Application()
    app[SIM] = sim
    connect_handler = api("connect", _connect_style, connect)
    streams_handler = api("active_streams", _active_streams_style, active_streams)
    action_handler = api("actions", "v2", leg_action)
    app.router.add_post("/v1/Accounts/{sid}/Calls/connect.json", connect_handler)
    app.router.add_post("/v1/Accounts/{sid}/Calls/connect", connect_handler)
    app.router.add_post("/v1/accounts/{sid}/calls/connect", connect_handler)
    app.router.add_post("/v1/accounts/{sid}/calls/connect.json", connect_handler)
    app.router.add_get("/v1/Accounts/{sid}/ActiveStreams", streams_handler)
    app.router.add_get("/v1/accounts/{sid}/activestreams", streams_handler)
    app.router.add_get("/v1/Accounts/{sid}/Calls/{call_sid}.json", api("call_details", "pascal", call_details))
    app.router.add_get("/v2/accounts/{sid}/legs/{leg}", api("get_leg", "v2", get_leg))
    app.router.add_post("/v2/accounts/{sid}/legs", api("legs", "v2", create_leg))
    app.router.add_post("/v2/accounts/{sid}/legs/{leg}/actions/{action}", action_handler)
    app.router.add_post("/v2/accounts/{sid}/legs/{leg}/actions", action_handler)
    app.router.add_post("/v2/accounts/{sid}/bridges", api("bridges", "v2", create_bridge))
    app.router.add_put("/_sim/flows/{flow_id}", put_flow)
    app.router.add_put("/_sim/faults", put_faults)
    app.router.add_put("/_sim/price", put_price)
    app.router.add_get("/_sim/calls", list_calls)
    app.router.add_get("/_sim/health", health)
    app.router.add_get("/_sim/recordings/{call_sid}.wav", recording)
    return app
