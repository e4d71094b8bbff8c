"""Whatever arrives at a callback route (bytes, forms, JSON, queries), the answer is never a 5xx."""

import json
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.callbacks.conftest import dialled

KINDS = ["status", "passthru", "leg_event", "stream_url"]
# Names our parsers read, so that the fuzzer reaches past "nothing identifies the call".
KEYS = ["CallSid", "Status", "CustomField", "RecordingUrl", "ConversationDuration", "call", "callsid",
        "duration", "recordingurl", "streamurl", "Stream", "Stream[Duration]", "Stream[RecordingUrl]",
        "Stream[StreamUrl]", "event_name", "data", "event_data", "custom_param", "leg_sid"]
CONTENT_TYPES = ["application/x-www-form-urlencoded", "application/json", "multipart/form-data; boundary=x",
                 "multipart/form-data", "text/plain", ""]

texts = st.text(max_size=30)
values = st.one_of(texts, st.sampled_from(["inf", "1e400", "-1", "nan", "javascript:alert(1)", "\x00", "$SID",
                                           "$TOKEN", "completed", "leg_answered", "9" * 30]))
keys = st.one_of(st.sampled_from(KEYS), texts)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | values,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=12,
)
bodies = st.one_of(
    st.binary(max_size=200),
    st.dictionaries(keys, values, max_size=6).map(lambda fields: urlencode(fields).encode()),
    st.dictionaries(keys, json_values, max_size=6).map(lambda doc: json.dumps(doc).encode()),
    json_values.map(lambda doc: json.dumps(doc).encode()),
)


def fill(data: bytes | str, call) -> str | bytes:
    if isinstance(data, str):
        return data.replace("$SID", call.exotel_sid).replace("$TOKEN", call.token)
    return data.replace(b"$SID", call.exotel_sid.encode()).replace(b"$TOKEN", call.token.encode())


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["GET", "POST"]), query=st.dictionaries(keys, values, max_size=4),
       body=bodies, content_type=st.sampled_from(CONTENT_TYPES))
def test_no_delivery_is_answered_with_a_server_error(acme, campaign, kind, method, query, body, content_type):
    call = dialled(campaign, exotel_sid=f"CA{campaign.calls.count()}")
    url = reverse(f"callbacks:{kind}", args=[acme.webhook_token]) + "?" + fill(urlencode(query), call)
    response = Client().generic(method, url, fill(body, call), content_type=content_type)
    assert response.status_code < 500, response.content
