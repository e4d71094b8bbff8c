"""Stream frames: round trips of every frame, tolerance of what Exotel varies, errors with close codes."""

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exotel import protocol
from exotel.protocol import CloseCode, ProtocolError

PCM = bytes(range(256)) * 25  # 6400 bytes, a legal chunk


def test_every_exotel_frame_round_trips():
    frames = [
        protocol.exotel_connected_frame(),
        protocol.exotel_start_frame(1, stream_sid="MZ1", call_sid="CA1", account_sid="AC1",
                                    from_="+919876543210", to="08047491899",
                                    custom_parameters={"token": "t"}, sample_rate=16000),
        protocol.exotel_media_frame(2, "MZ1", 1, 100, PCM),
        protocol.exotel_dtmf_frame(3, "MZ1", "5", 100),
        protocol.exotel_mark_frame(4, "MZ1", "turn-1"),
        protocol.exotel_stop_frame(5, "MZ1", call_sid="CA1", account_sid="AC1", reason="callended"),
    ]
    assert [protocol.parse_frame(f) for f in frames] == [
        protocol.Connected(),
        protocol.Start("MZ1", "CA1", "AC1", "+919876543210", "08047491899", {"token": "t"}, 16000,
                       "audio/x-raw", 16, 1),
        protocol.Media("MZ1", 2, 1, 100, PCM),
        protocol.Dtmf("MZ1", 3, "5", 100),
        protocol.Mark("MZ1", 4, "turn-1"),
        protocol.Stop("MZ1", 5, "callended", "CA1", "AC1"),
    ]


def test_every_bot_frame_round_trips_and_carries_stream_sid():
    frames = [protocol.media_frame("MZ1", PCM), protocol.mark_frame("MZ1", "m"), protocol.clear_frame("MZ1")]
    assert all(json.loads(f)["stream_sid"] == "MZ1" for f in frames)
    assert [protocol.parse_bot_frame(f) for f in frames] == [
        protocol.BotMedia("MZ1", PCM), protocol.BotMark("MZ1", "m"), protocol.BotClear("MZ1")]


def test_a_bot_frame_may_omit_or_camel_case_its_stream_sid():
    payload = base64.b64encode(PCM).decode()
    assert protocol.parse_bot_frame(json.dumps({"event": "media", "media": {"payload": payload}})) == (
        protocol.BotMedia("", PCM))
    assert protocol.parse_bot_frame('{"event": "mark", "streamSid": "MZ1", "mark": {"name": "m"}}') == (
        protocol.BotMark("MZ1", "m"))


def test_mulaw_payloads_are_whole_bytes_and_the_start_says_so():
    frame = json.dumps({"event": "media", "stream_sid": "MZ1", "media": {"payload": "AAAA"}})  # 3 bytes
    assert protocol.parse_bot_frame(frame, sample_width=1) == protocol.BotMedia("MZ1", bytes(3))
    with pytest.raises(protocol.ProtocolError, match="16-bit"):
        protocol.parse_bot_frame(frame)
    start = json.loads(protocol.exotel_start_frame(1, stream_sid="MZ1", call_sid="CA1", account_sid="AC1",
                                                   from_="+919800000001", to="+918047491899", custom_parameters={},
                                                   sample_rate=8000, encoding="audio/x-mulaw"))
    assert start["start"]["media_format"] == {"encoding": "audio/x-mulaw", "sample_rate": "8000", "bit_rate": "8"}


def test_it_accepts_camel_case_sids_integer_numbers_and_extra_fields():
    frame = json.dumps({"event": "start", "sequenceNumber": 1, "streamSid": "MZ9", "extra": {"x": 1},
                        "start": {"streamSid": "MZ9", "callSid": "CA9", "accountSid": "AC9",
                                  "mediaFormat": {"encoding": "audio/x-l16", "sampleRate": 24000}}})
    start = protocol.parse_frame(frame)
    assert (start.stream_sid, start.call_sid, start.account_sid, start.sample_rate, start.sequence_number) == (
        "MZ9", "CA9", "AC9", 24000, 1)
    media = protocol.parse_frame(json.dumps({"event": "media", "streamSid": "MZ9", "sequence_number": 3,
                                             "media": {"chunk": 2, "timestamp": 200, "payload": "AAA=",
                                                       "track": "inbound"}}))
    assert media == protocol.Media("MZ9", 3, 2, 200, b"\x00\x00")


def test_a_start_without_media_format_is_the_8khz_default():
    frame = json.dumps({"event": "start", "start": {"stream_sid": "MZ", "call_sid": "CA"}})
    assert protocol.parse_frame(frame).sample_rate == 8000


def test_unknown_events_are_reported_not_fatal():
    event = protocol.parse_frame('{"event": "heartbeat", "n": 1}')
    assert event == protocol.Unknown("heartbeat", {"event": "heartbeat", "n": 1})
    assert isinstance(protocol.parse_bot_frame('{"event": "dance"}'), protocol.Unknown)


@pytest.mark.parametrize(("frame", "code"), [
    ("not json", CloseCode.UNSUPPORTED_DATA),
    ("[1, 2]", CloseCode.UNSUPPORTED_DATA),
    ('{"no": "event"}', CloseCode.PROTOCOL_ERROR),
    ('{"event": "start", "start": {"stream_sid": "MZ"}}', CloseCode.PROTOCOL_ERROR),
    ('{"event": "start", "start": {"stream_sid": "MZ", "call_sid": "CA", "media_format": {"sample_rate": "11025"}}}',
     CloseCode.INVALID_PAYLOAD),
    ('{"event": "media", "stream_sid": "MZ", "media": {"payload": "***"}}', CloseCode.INVALID_PAYLOAD),
    ('{"event": "media", "stream_sid": "MZ", "media": {"payload": "AAAA"}}', CloseCode.INVALID_PAYLOAD),
    ('{"event": "media", "stream_sid": "MZ"}', CloseCode.PROTOCOL_ERROR),
    ('{"event": "media", "sequence_number": "x", "media": {"payload": "AAA="}}', CloseCode.INVALID_PAYLOAD),
    ('{"event": "dtmf", "dtmf": {}}', CloseCode.PROTOCOL_ERROR),
])
def test_broken_frames_raise_with_a_close_code(frame, code):
    with pytest.raises(ProtocolError) as caught:
        protocol.parse_frame(frame)
    assert caught.value.close_code == code


def test_a_bot_mark_needs_a_name():
    with pytest.raises(ProtocolError) as caught:
        protocol.parse_bot_frame('{"event": "mark", "stream_sid": "MZ", "mark": {}}')
    assert caught.value.close_code == CloseCode.PROTOCOL_ERROR


@pytest.mark.parametrize(("size", "code"), [
    (3200, None), (99840, None), (100000, CloseCode.INVALID_PAYLOAD), (3000, CloseCode.INVALID_PAYLOAD), (3330, CloseCode.INVALID_PAYLOAD),
    (100160, CloseCode.MESSAGE_TOO_BIG)])
def test_chunk_rules(size, code):
    problem = protocol.chunk_problem(size)
    assert (problem[1] if problem else None) == code


def test_media_frame_refuses_an_illegal_chunk():
    with pytest.raises(ValueError, match="multiple of 320"):
        protocol.media_frame("MZ", bytes(3330))
    assert base64.b64decode(json.loads(protocol.media_frame("MZ", PCM))["media"]["payload"]) == PCM


@given(st.text())
def test_a_media_frame_is_the_json_of_its_fields(stream_sid):
    assert protocol.media_frame(stream_sid, PCM) == json.dumps(
        {"event": "media", "stream_sid": stream_sid, "media": {"payload": base64.b64encode(PCM).decode()}},
        separators=(",", ":"))

