"""The HTTP client against the simulator over real HTTP: every call, error class and retry rule."""

from __future__ import annotations

import time

import httpx
import pytest

from exotel import wire
from exotel.client import (
    AsyncExotelClient,
    BotCall,
    ExotelClient,
    FlowCall,
    NewLeg,
    RetryPolicy,
)
from exotel.errors import (
    AuthenticationError,
    OutcomeUnknownError,
    RateLimitedError,
    RejectedError,
    TransientError,
    ValidationError,
)

from .conftest import (
    NUMBERS,
    SID,
    SID_LIMITED,
    BotLog,
    echo_handler,
    free_port,
    launch_simulator,
    stop_simulator,
)

FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.05, max_delay=0.2)
EXOPHONE = "08047491899"


def bot_call(**overrides):
    fields = {"number": NUMBERS["silent"], "caller_id": EXOPHONE, "stream_url": "ws://127.0.0.1:9/stream",
              "custom_field": "tok-1"}
    return BotCall(**(fields | overrides))


def requests_since(sim, position):
    return sim.records("request", since=position)


def test_it_connects_a_number_to_a_bot_with_pascal_case_fields(sim):
    position = sim.log_position()
    with ExotelClient(sim.account()) as client:
        info = client.connect_to_bot(bot_call(
            number=NUMBERS["busy"], record=True, recording_channels="dual", time_limit=600,
            status_callback="http://127.0.0.1:9/cb", status_callback_events=("answered", "terminal"),
            status_callback_content_type="application/json", stream_name="campaign-1"))
    assert info.sid and info.status == "in-progress" and info.from_ == NUMBERS["busy"]
    assert info.direction == "outbound-api" and info.account_sid == SID
    (request,) = requests_since(sim, position)
    assert request["path"] == f"/v1/Accounts/{SID}/Calls/connect.json"
    assert request["body"] == {
        "from": NUMBERS["busy"], "callerid": EXOPHONE, "streamurl": "ws://127.0.0.1:9/stream",
        "streamtype": "bidirectional", "record": "true", "recordingchannels": "dual", "timelimit": "600",
        "customfield": "tok-1", "statuscallback": "http://127.0.0.1:9/cb",
        "statuscallbackevents[]": ["answered", "terminal"],
        "statuscallbackcontenttype": "application/json", "streamname": "campaign-1"}


async def test_it_connects_through_a_flow_asynchronously(sim):
    position = sim.log_position()
    flow_url = f"https://my.exotel.com/{SID}/exoml/start_voice/4242"
    async with AsyncExotelClient(sim.account()) as client:
        info = await client.connect_to_flow(FlowCall(number=NUMBERS["busy"], caller_id=EXOPHONE,
                                                     flow_url=flow_url, timeout=30, custom_field="tok-2"))
    assert info.status == "in-progress"
    (request,) = requests_since(sim, position)
    assert request["body"] == {"from": NUMBERS["busy"], "callerid": EXOPHONE, "customfield": "tok-2",
                               "url": flow_url, "calltype": "trans", "timeout": "30"}


def test_the_national_number_form_is_an_account_setting(sim):
    position = sim.log_position()
    with ExotelClient(sim.account(number_form="national")) as client:
        client.connect_to_bot(bot_call(number=NUMBERS["busy"]))
    assert requests_since(sim, position)[0]["body"]["from"] == "0" + NUMBERS["busy"][3:]


async def test_it_drives_a_leg_through_every_action(sim, receiver, bot_server):
    bot_url = await bot_server(echo_handler(BotLog()))
    position = sim.log_position()
    async with AsyncExotelClient(sim.account()) as client:
        leg = await client.create_leg(NewLeg(number=NUMBERS["silent"], exophone=EXOPHONE,
                                             leg_event_endpoint=receiver.url + "/legs", custom_param="tok-3",
                                             ring_timeout=20, time_limit=60))
        assert leg.state == "connecting" and leg.request_id
        sim.wait_for_call(leg.leg_sid, ("in-progress",))
        accepted = [await client.start_say(leg.leg_sid, "Please hold.", loop=0),
                    await client.start_stream(leg.leg_sid, url=bot_url, sample_rate=16000),
                    await client.stop_say(leg.leg_sid),
                    await client.hangup_leg(leg.leg_sid)]
    assert all(a.request_id for a in accepted)
    bodies = {r["path"].rsplit("/", 1)[-1]: r["body"] for r in requests_since(sim, position)}
    assert bodies["legs"] == {"contact_uri": NUMBERS["silent"], "exophone": EXOPHONE,
                              "leg_event_endpoint": receiver.url + "/legs", "custom_param": "tok-3",
                              "ring_timeout": 20, "time_limit": 60}
    assert bodies["start_stream"] == {"direction": "bidirectional", "url": bot_url,
                                      "content_type": "audio/x-l16;rate=16000"}
    assert bodies["start_say"] == {"text": "Please hold.", "loop": 0}
    assert bodies["stop_say"] == {}
    assert bodies["actions"] == {"exoml": "<Flow><Hangup/></Flow>"}


def test_active_streams_counts_live_calls_and_a_dial_beyond_the_limit_is_refused(sim):
    with ExotelClient(sim.account(SID_LIMITED)) as client:
        assert client.active_streams() == wire.ActiveStreams(active=0, max_allowed=1)
        client.connect_to_bot(bot_call(number=NUMBERS["slow_ring"]))
        assert client.active_streams() == wire.ActiveStreams(active=1, max_allowed=1)
        with pytest.raises(RateLimitedError) as refused:
            client.connect_to_bot(bot_call(number=NUMBERS["slow_ring"]))
    assert refused.value.code == "StreamLimitExceeded" and refused.value.retry_after is None


def test_active_streams_reads_the_xml_answer(tmp_path):
    from .conftest import CONFIG

    xml_sim = launch_simulator(tmp_path, CONFIG | {"active_streams_format": "xml"})
    try:
        with ExotelClient(xml_sim.account()) as client:
            assert client.active_streams() == wire.ActiveStreams(active=0, max_allowed=100)
        raw = httpx.get(f"{xml_sim.base_url}/v1/Accounts/{SID}/ActiveStreams", auth=("key-1", "token-1"))
        assert raw.text.startswith("<TwilioResponse><Stream><ActiveStreamCount>0")
    finally:
        stop_simulator(xml_sim)


@pytest.mark.parametrize(("path", "shape"), [
    (f"/v1/Accounts/{SID}/Calls/connect.json", "pascal"),
    (f"/v1/Accounts/{SID}/Calls/connect", "xml"),
    (f"/v1/accounts/{SID}/calls/connect", "lower"),
])
def test_every_connect_answer_shape_parses(sim, path, shape):
    form = {"from": NUMBERS["busy"], "callerid": EXOPHONE, "streamurl": "ws://127.0.0.1:9/s",
            "streamtype": "bidirectional"}
    if shape == "pascal":
        form = {"From": form["from"], "CallerId": EXOPHONE, "StreamUrl": form["streamurl"],
                "StreamType": "bidirectional"}
    response = httpx.post(sim.base_url + path, data=form, auth=("key-1", "token-1"))
    assert response.status_code == 200
    assert {"pascal": '{"Call"', "xml": "<TwilioResponse><Call>", "lower": '{"call"'}[shape] in response.text
    info = wire.parse_call(wire.Reply(200, response.content, response.headers["content-type"]))
    assert len(info.sid) == 32 and info.status == "in-progress" and info.from_ == NUMBERS["busy"]


@pytest.mark.parametrize(("path", "body_marker"), [
    (f"/v1/Accounts/{SID}/Calls/connect.json", '"RestException"'),
    (f"/v1/Accounts/{SID}/Calls/connect", "<RestException>"),
])
def test_error_answers_in_json_and_xml_name_the_field(sim, path, body_marker):
    response = httpx.post(sim.base_url + path, data={"From": "12345", "CallerId": EXOPHONE, "StreamUrl": "ws://x/s",
                                                     "StreamType": "bidirectional"}, auth=("key-1", "token-1"))
    assert response.status_code == 400 and body_marker in response.text
    error = wire.error_for(wire.Reply(400, response.content, response.headers["content-type"]))
    assert isinstance(error, RejectedError) and "From" in error.message


INVALID = [
    ("From", lambda: bot_call(number="9876543210")),
    ("From", lambda: bot_call(number="+91")),
    ("CallerId", lambda: bot_call(caller_id="")),
    ("StreamUrl", lambda: bot_call(stream_url="https://bot.example.com/stream")),
    ("StreamUrl", lambda: bot_call(stream_url="wss://bot.example.com/" + "x" * 600)),
    ("CustomField", lambda: bot_call(custom_field="x" * 129)),
    ("StreamName", lambda: bot_call(stream_name="x" * 33)),
    ("TimeLimit", lambda: bot_call(time_limit=14401)),
    ("TimeLimit", lambda: bot_call(time_limit=0)),
    ("RecordingChannels", lambda: bot_call(recording_channels="stereo")),
    ("StatusCallbackEvents", lambda: bot_call(status_callback="https://a/cb", status_callback_events=("busy",))),
    ("StatusCallbackEvents", lambda: bot_call(status_callback_events=("terminal",))),
    ("StatusCallback", lambda: bot_call(status_callback="ftp://a/cb")),
    ("StatusCallbackContentType", lambda: bot_call(status_callback="https://a/cb",
                                                   status_callback_content_type="text/xml")),
]


@pytest.mark.parametrize(("field", "make"), INVALID, ids=[f"{f}-{i}" for i, (f, _) in enumerate(INVALID)])
def test_validation_errors_name_the_field_and_send_nothing(sim, field, make):
    position = sim.log_position()
    with ExotelClient(sim.account()) as client, pytest.raises(ValidationError) as caught:
        client.connect_to_bot(make())
    assert caught.value.field == field
    assert requests_since(sim, position) == []


FLOW = f"https://my.exotel.com/{SID}/exoml/start_voice/1"


@pytest.mark.parametrize(("field", "call"), [
    ("Url", lambda c: c.connect_to_flow(FlowCall(number=NUMBERS["busy"], caller_id=EXOPHONE, flow_url="wss://x/y"))),
    ("CallType", lambda c: c.connect_to_flow(FlowCall(number=NUMBERS["busy"], caller_id=EXOPHONE, flow_url=FLOW,
                                                      call_type="promo"))),
    ("TimeOut", lambda c: c.connect_to_flow(FlowCall(number=NUMBERS["busy"], caller_id=EXOPHONE, flow_url=FLOW,
                                                     timeout=-1))),
    ("StatusCallbackEvents", lambda c: c.connect_to_flow(FlowCall(
        number=NUMBERS["busy"], caller_id=EXOPHONE, flow_url=FLOW, status_callback="https://a/cb",
        status_callback_events=("ringing",)))),
    ("leg_event_endpoint", lambda c: c.create_leg(NewLeg(number=NUMBERS["busy"], exophone=EXOPHONE,
                                                         leg_event_endpoint="grpc://events.example.com"))),
    ("contact_uri", lambda c: c.create_leg(NewLeg(number="0800", exophone=EXOPHONE,
                                                  leg_event_endpoint="https://a/e"))),
    ("url", lambda c: c.start_stream("leg1", url="http://bot/stream")),
    ("content_type", lambda c: c.start_stream("leg1", url="wss://bot/stream", sample_rate=44100)),
    ("text", lambda c: c.start_say("leg1", "")),
    ("loop", lambda c: c.start_say("leg1", "hi", loop=-1)),
    ("leg_sid", lambda c: c.stop_say("../../etc")),
])
def test_flow_leg_and_action_validation_sends_nothing(sim, field, call):
    position = sim.log_position()
    with ExotelClient(sim.account()) as client, pytest.raises(ValidationError) as caught:
        call(client)
    assert caught.value.field == field
    assert requests_since(sim, position) == []


@pytest.mark.parametrize(("field", "kwargs"), [
    ("StreamUrl", {"base_ws_url": "https://bot/s"}),
    ("sample-rate", {"base_ws_url": "wss://bot/s", "sample_rate": 44100}),
    ("custom_parameters", {"base_ws_url": "wss://bot/s", "custom_parameters": {"a": "1", "b": "2", "c": "3", "d": "4"}}),
    ("custom_parameters", {"base_ws_url": "wss://bot/s", "custom_parameters": {"a": "x" * 255}}),
    ("StreamUrl", {"base_ws_url": "wss://bot/" + "x" * 560, "custom_parameters": {"a": "x" * 40}}),
])
def test_stream_url_limits(field, kwargs):
    with pytest.raises(ValidationError) as caught:
        wire.build_stream_url(**kwargs)
    assert caught.value.field == field


def test_a_stream_url_carries_the_rate_and_custom_parameters():
    url = wire.build_stream_url("wss://bot.example.com/s/abc", sample_rate=16000, custom_parameters={"t": "1 2"})
    assert url == "wss://bot.example.com/s/abc?sample-rate=16000&t=1+2"


def test_bad_credentials_are_an_authentication_error(sim):
    with ExotelClient(sim.account(api_token="wrong")) as client, pytest.raises(AuthenticationError) as caught:
        client.active_streams()
    assert caught.value.status == 401


def test_a_4xx_carries_exotels_message_and_code(sim):
    sim.set_faults([{"endpoint": "connect", "kind": "status", "status": 402, "message": "Insufficient balance",
                     "code": "40201"}])
    with ExotelClient(sim.account()) as client, pytest.raises(RejectedError) as caught:
        client.connect_to_bot(bot_call())
    assert (caught.value.status, caught.value.message, caught.value.code) == (402, "Insufficient balance", "40201")


async def test_a_v2_error_is_typed_too(sim):
    sim.set_faults([{"endpoint": "legs", "kind": "status", "status": 403, "message": "Legs not enabled"}])
    async with AsyncExotelClient(sim.account()) as client:
        with pytest.raises(AuthenticationError, match="Legs not enabled"):
            await client.create_leg(NewLeg(number=NUMBERS["busy"], exophone=EXOPHONE,
                                           leg_event_endpoint="http://127.0.0.1:9/e"))


def test_429_retry_after_is_honoured_for_active_streams(sim):
    sim.set_faults([{"endpoint": "active_streams", "kind": "status", "status": 429, "retry_after": "1", "times": 1}])
    position = sim.log_position()
    started = time.monotonic()
    with ExotelClient(sim.account(), retry=FAST_RETRY) as client:
        assert client.active_streams().max_allowed == 100
    assert time.monotonic() - started >= 1.0
    assert len(requests_since(sim, position)) == 2


def test_429_on_connect_is_raised_with_retry_after_and_not_retried(sim):
    sim.set_faults([{"endpoint": "connect", "kind": "status", "status": 429, "retry_after": "7"}])
    position = sim.log_position()
    with ExotelClient(sim.account(), retry=FAST_RETRY) as client, pytest.raises(RateLimitedError) as caught:
        client.connect_to_bot(bot_call())
    assert caught.value.retry_after == 7.0
    assert len(requests_since(sim, position)) == 1


def test_500_is_retried_for_active_streams(sim):
    sim.set_faults([{"endpoint": "active_streams", "kind": "status", "status": 500, "times": 2}])
    position = sim.log_position()
    with ExotelClient(sim.account(), retry=FAST_RETRY) as client:
        assert client.active_streams().active >= 0
    assert len(requests_since(sim, position)) == 3


def test_500_that_persists_gives_up_after_the_attempts(sim):
    sim.set_faults([{"endpoint": "active_streams", "kind": "status", "status": 503}])
    position = sim.log_position()
    with ExotelClient(sim.account(), retry=FAST_RETRY) as client, pytest.raises(TransientError):
        client.active_streams()
    assert len(requests_since(sim, position)) == 3


def test_500_on_connect_is_not_retried(sim):
    sim.set_faults([{"endpoint": "connect", "kind": "status", "status": 500}])
    position = sim.log_position()
    with ExotelClient(sim.account(), retry=FAST_RETRY) as client, pytest.raises(TransientError):
        client.connect_to_bot(bot_call())
    assert len(requests_since(sim, position)) == 1


def test_a_timeout_after_sending_connect_means_the_outcome_is_unknown(sim):
    sim.set_faults([{"endpoint": "connect", "kind": "timeout", "delay": 5, "times": 1}])
    position = sim.log_position()
    with ExotelClient(sim.account(), timeout=0.5) as client, pytest.raises(OutcomeUnknownError):
        client.connect_to_bot(bot_call(number=NUMBERS["busy"], custom_field="tok-unknown"))
    assert len(requests_since(sim, position)) == 1
    # The call exists: the dialer reconciles it by the token in CustomField.
    assert any(c["custom_field"] == "tok-unknown" for c in sim.calls())


def test_a_slow_active_streams_times_out_and_is_retried(sim):
    sim.set_faults([{"endpoint": "active_streams", "kind": "slow", "delay": 1.0, "times": 1}])
    with ExotelClient(sim.account(), timeout=0.3, retry=FAST_RETRY) as client:
        assert client.active_streams().max_allowed == 100


async def test_a_refused_connection_was_never_sent():
    account = wire.Account(SID, "k", "t", base_url_override=f"http://127.0.0.1:{free_port()}")
    async with AsyncExotelClient(account, retry=FAST_RETRY) as client:
        with pytest.raises(TransientError, match="ConnectError"):
            await client.connect_to_bot(bot_call())


def test_credentials_never_show_in_repr():
    account = wire.Account(SID, "the-key", "the-token")
    assert "the-key" not in repr(account) and "the-token" not in repr(account)
    assert wire.Account(SID, "k", "t").api_base == "https://api.in.exotel.com"
    assert wire.Account(SID, "k", "t", region="singapore").cpaas_base == "https://cpaas-api.exotel.com"


@pytest.mark.parametrize(("content_type", "expected"), [
    ("audio/x-mulaw;rate=8000", ("audio/x-mulaw", 8000)),   # the reference's own example
    ("audio/x-l16; rate=16000", ("audio/x-raw", 16000)),    # what we send
])
def test_a_start_stream_content_type_reads_as_an_encoding_and_a_rate(content_type, expected):
    assert wire.requests.parse_content_type(content_type) == expected


@pytest.mark.parametrize("content_type", ["audio/x-mulaw", "audio/wav;rate=8000", "audio/x-l16;rate=44100", ""])
def test_an_unknown_content_type_names_the_field(content_type):
    with pytest.raises(ValidationError) as caught:
        wire.requests.parse_content_type(content_type)
    assert caught.value.field == "content_type"


@pytest.mark.parametrize(("number", "e164"), [
    ("08047491899", "+918047491899"), ("+919876543210", "+919876543210"), ("12345", "12345")])
def test_accepted_numbers_read_as_e164_where_they_can(number, e164):
    assert wire.requests.e164_from_dialled(number) == e164


def test_every_client_verifies_tls_with_one_context_built_once(sim):
    import asyncio
    import ssl

    clients = [ExotelClient(sim.account()), ExotelClient(sim.account()), AsyncExotelClient(sim.account())]
    contexts = {id(client._http._transport._pool._ssl_context): client._http._transport._pool._ssl_context
                for client in clients}
    clients[0].close(), clients[1].close(), asyncio.run(clients[2]._http.aclose())
    (context,) = contexts.values()  # building one costs tens of ms of CPU: not once per call placed
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)
