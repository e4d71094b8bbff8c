"""Passthru in its three shapes fills the call's details; the flow's applet gets each call's stream URL."""

import pytest

from callbacks.models import WebhookEvent
from campaigns import donotcall
from campaigns.models import Call, DoNotCall
from tests.callbacks.replay import load, replay
from tests.conftest import make_campaign, make_contact


@pytest.mark.parametrize("shape", ["passthru_flat", "passthru_nested"])
def test_passthru_fills_disposition_and_details(acme, call, shape):
    assert replay(acme, shape, call=call).status_code == 200
    call.refresh_from_db()
    assert call.duration == 64
    assert call.recording_url.endswith(".wav")
    assert call.detailed_status == "StreamEndedByCaller"
    assert call.disconnected_by in ("caller", "user")  # stored as Exotel gave it
    assert call.state == Call.State.DIALING  # Passthru reports the stream, not the call's state


def test_passthru_with_one_json_stream_value_carries_the_error(acme, call):
    replay(acme, "passthru_json", call=call)
    call.refresh_from_db()
    assert (call.error, call.disconnected_by, call.detailed_status) == ("handshake timed out", "system", "StreamFailed")


def test_passthru_finds_the_call_by_the_token_in_its_stream_url(acme, call):
    fields = load("passthru_flat", sid="CAunknown", token=call.token)["fields"]
    assert call.token in fields["streamurl"]
    replay(acme, "passthru_flat", sid="CAunknown", token=call.token)
    assert WebhookEvent.objects.get().call == call


def test_a_repeated_passthru_changes_nothing(acme, call):
    replay(acme, "passthru_flat", call=call)
    replay(acme, "passthru_flat", call=call)
    assert [e.outcome for e in WebhookEvent.objects.order_by("received_at")] == ["applied", "duplicate"]


def test_the_stream_url_endpoint_answers_this_calls_url(acme, call, settings):
    response = replay(acme, "stream_url_request", call=call)
    assert response.status_code == 200
    url = response.json()["url"]
    assert url.startswith(f"ws://127.0.0.1:8000/streams/{call.token}?sample-rate=8000")
    assert f"campaign={call.campaign_id}" in url


def test_the_stream_url_endpoint_says_404_for_a_call_it_does_not_know(acme, call):
    response = replay(acme, "stream_url_request", sid="CAnobody", token="nobody-at-all")
    assert response.status_code == 404
    assert WebhookEvent.objects.get().outcome == WebhookEvent.Outcome.ORPHANED


def test_a_passthru_disposition_that_means_opt_out_lists_the_number_for_every_campaign(acme, call):
    other = make_contact(make_campaign(acme), phone=call.phone)
    assert replay(acme, "passthru_opted_out", call=call).status_code == 200
    entry = DoNotCall.objects.get(workspace=acme, phone=call.phone)
    assert (entry.source, entry.reason) == (
        "passthru", f"Passthru disposition 'Opted-Out' (call {call.pk}, campaign {call.campaign_id})")
    assert donotcall.count_blocked(other.campaign) == 1
    replay(acme, "passthru_opted_out", call=call)
    assert [e.outcome for e in WebhookEvent.objects.order_by("received_at")] == ["applied", "duplicate"]


def test_other_dispositions_list_nothing(acme, call):
    replay(acme, "passthru_flat", call=call)  # "caller-hangup"
    assert not DoNotCall.objects.exists()
