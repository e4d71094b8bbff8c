"""Hostile deliveries: each is stored as far as it can be and answered 4xx, never 5xx; no unsafe URL is kept."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from callbacks.models import WebhookEvent
from campaigns.models import Call
from tests.callbacks.replay import load
from tests.conftest import make_call

Outcome = WebhookEvent.Outcome


def post_form(workspace, kind, fields, query=""):
    url = reverse(f"callbacks:{kind}", args=[workspace.webhook_token]) + query
    return Client().post(url, fields)


def terminal(call, **fields):
    return {"CallSid": call.exotel_sid, "Status": "completed", "CustomField": call.token, **fields}


def assert_stored_and_refused(response, call):
    assert response.status_code == 400, response.content
    assert WebhookEvent.objects.get().outcome == Outcome.MALFORMED
    assert Call.objects.get(pk=call.pk).state == Call.State.DIALING


@pytest.mark.parametrize("url", [
    "javascript:alert(document.domain)//.mp3",
    "JavaScript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "//recordings.example.com/a.mp3",
    "https://recordings.exotel.com/" + "a" * 600 + ".mp3",
])
def test_a_recording_url_that_is_not_a_web_address_is_refused_and_never_kept(acme, call, url):
    response = post_form(acme, "status", terminal(call, RecordingUrl=url))
    assert_stored_and_refused(response, call)
    assert Call.objects.get(pk=call.pk).recording_url == ""


def test_a_passthru_recording_url_is_checked_too(acme, call):
    fields = load("passthru_nested", sid=call.exotel_sid, token=call.token)["fields"]
    fields["Stream[RecordingUrl]"] = "javascript:alert(1)"
    response = Client().get(reverse("callbacks:passthru", args=[acme.webhook_token]), fields)
    assert_stored_and_refused(response, call)
    assert Call.objects.get(pk=call.pk).recording_url == ""


@pytest.mark.parametrize("duration", ["inf", "-inf", "nan", "1e400", "99999999999", "-5"])
def test_a_duration_out_of_range_is_refused(acme, call, duration):
    assert_stored_and_refused(post_form(acme, "status", terminal(call, ConversationDuration=duration)), call)


def test_a_passthru_duration_of_1e400_is_refused(acme, call):
    fields = {**load("passthru_nested", sid=call.exotel_sid, token=call.token)["fields"], "Stream[Duration]": "1e400"}
    response = Client().get(reverse("callbacks:passthru", args=[acme.webhook_token]), fields)
    assert_stored_and_refused(response, call)


def test_a_nul_in_the_body_is_stored_replaced_and_refused(acme, call):
    url = reverse("callbacks:status", args=[acme.webhook_token])
    response = Client().post(url, f"CallSid={call.exotel_sid}&Status=completed&CustomField=a%00b",
                             content_type="application/x-www-form-urlencoded")
    assert_stored_and_refused(response, call)
    assert "\x00" not in WebhookEvent.objects.get().body


def test_a_nul_in_the_query_is_stored_replaced_and_refused(acme, call):
    response = post_form(acme, "status", terminal(call), query="?call=a%00b")
    assert_stored_and_refused(response, call)
    assert WebhookEvent.objects.get().query == {"call": "a\ufffdb"}


def test_a_nul_escaped_in_json_is_refused(acme, call):
    url = reverse("callbacks:leg_event", args=[acme.webhook_token])
    body = json.dumps({"event_name": "leg_answered", "data": {"leg_sid": "a\x00b"}})
    assert_stored_and_refused(Client().post(url, body, content_type="application/json"), call)


def test_deeply_nested_json_is_refused(acme, call):
    url = reverse("callbacks:leg_event", args=[acme.webhook_token])
    body = '{"event_name": "leg_answered", "data": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert_stored_and_refused(Client().post(url, body, content_type="application/json"), call)


def test_a_sid_longer_than_we_store_is_refused(acme, call):
    assert_stored_and_refused(post_form(acme, "status", terminal(call, CallSid="CA" + "1" * 100)), call)


@pytest.mark.parametrize("token", ["a%00b", "a%20b", "%C3%A9t%C3%A9"])
def test_a_token_that_cannot_be_ours_is_404_and_stored_nowhere(acme, call, token):
    response = Client().post(f"/hooks/{token}/status", terminal(call))
    assert response.status_code == 404
    assert not WebhookEvent.objects.exists()


def test_a_stored_script_url_never_reaches_href_or_src(bob_client, admin_client, campaign):
    """A row stored before URLs were checked (or by any other path) is still not rendered as a link."""
    call = make_call(campaign, recording_url="javascript:alert(document.domain)//.mp3")
    pages = [bob_client.get(call.get_absolute_url()),
             admin_client.get(reverse("admin:campaigns_call_change", args=[call.pk]))]
    for page in pages:
        html = page.content.decode()
        assert page.status_code == 200
        assert 'href="javascript:' not in html and 'src="javascript:' not in html


@pytest.mark.parametrize("stream", [[], 5, "[1]", "{"])
def test_a_stream_field_that_is_no_object_is_refused(acme, call, stream):
    url = reverse("callbacks:passthru", args=[acme.webhook_token])
    body = json.dumps({"CallSid": call.exotel_sid, "Stream": stream})
    assert_stored_and_refused(Client().post(url, body, content_type="application/json"), call)
