"""Bad input: wrong token 404 stored nowhere; malformed stored and 400 on the request; a failure to
apply keeps the raw record."""

import pytest
from django.db import OperationalError
from django.test import Client
from django.urls import reverse

from callbacks import applier
from callbacks.models import WebhookEvent
from campaigns import calls
from campaigns.models import Call
from tests.callbacks.replay import replay

Outcome = WebhookEvent.Outcome


@pytest.mark.parametrize("kind", ["status", "passthru", "leg_event", "stream_url"])
def test_a_wrong_workspace_token_is_404_and_stored_nowhere(acme, call, kind):
    url = reverse(f"callbacks:{kind}", args=["no-such-token"])
    assert Client().post(url, {"CallSid": call.exotel_sid, "Status": "completed"}).status_code == 404
    assert not WebhookEvent.objects.exists()


def test_a_status_without_a_status_is_stored_and_refused_with_the_reason(acme, call):
    url = reverse("callbacks:status", args=[acme.webhook_token])
    response = Client().post(url, {"CallSid": call.exotel_sid})
    assert response.status_code == 400
    assert "Status is missing" in response.json()["error"]
    assert WebhookEvent.objects.get().outcome == Outcome.MALFORMED


def test_an_unknown_status_word_is_refused(acme, call):
    url = reverse("callbacks:status", args=[acme.webhook_token])
    response = Client().post(url, {"CallSid": call.exotel_sid, "Status": "exploded"})
    assert response.status_code == 400
    assert "exploded" in response.json()["error"]


def test_a_body_that_is_not_json_is_stored_and_refused(acme, call):
    url = reverse("callbacks:leg_event", args=[acme.webhook_token])
    response = Client().post(url, "{not json", content_type="application/json")
    assert response.status_code == 400
    event = WebhookEvent.objects.get()
    assert (event.outcome, event.body) == (Outcome.MALFORMED, "{not json")


def test_a_delivery_naming_no_call_is_refused(acme, call):
    url = reverse("callbacks:passthru", args=[acme.webhook_token])
    response = Client().get(url, {"status": "completed"})
    assert response.status_code == 400
    assert "nothing identifies the call" in response.json()["error"]


def test_a_non_numeric_duration_is_refused(acme, call):
    url = reverse("callbacks:status", args=[acme.webhook_token])
    response = Client().post(url, {"CallSid": call.exotel_sid, "Status": "completed", "ConversationDuration": "ten"})
    assert response.status_code == 400


def test_when_applying_fails_the_raw_record_stays_marked_failed_with_the_reason(acme, call, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(calls, "advance", broken)
    assert replay(acme, "status_terminal_form", call=call).status_code == 200  # acknowledged before applying
    event = WebhookEvent.objects.get()
    assert (event.outcome, event.call) == (Outcome.FAILED, call)
    assert "a bug of ours" in event.detail
    assert Call.objects.get(pk=call.pk).state == Call.State.DIALING


def test_a_lost_database_connection_leaves_the_delivery_pending_for_the_next_try(acme, call, monkeypatch):
    def connection_lost(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(calls, "advance", connection_lost)
    replay(acme, "status_terminal_form", call=call, apply=False)
    with pytest.raises(OperationalError):
        applier.apply_pending()
    assert WebhookEvent.objects.get().outcome == Outcome.PENDING
    monkeypatch.undo()
    assert applier.apply_pending() == 1
    assert Call.objects.get(pk=call.pk).state == Call.State.COMPLETED
