"""Webhooks to the CRM: events written with the change they tell of, signed, retried with backoff,
replayable, and only to addresses that are the customer's."""

import hashlib
import hmac
import json
import socket

import httpx
import pytest
from django.db import transaction

from campaigns import calls, lifecycle
from campaigns.models import Call
from integrations import delivery
from integrations.models import Delivery, OutboxEvent, WebhookEndpoint
from tenancy import weburls
from tests.conftest import make_call, make_contact

pytestmark = pytest.mark.django_db
Event = WebhookEndpoint.Event


def make_endpoint(workspace, url="https://crm.example.com/hooks", events=Event.values, **fields):
    return WebhookEndpoint.objects.create(workspace=workspace, url=url, secret=delivery.new_secret(),
                                          events=list(events), **fields)


@pytest.fixture
def endpoint(acme):
    return make_endpoint(acme)


def end(call, state=Call.State.COMPLETED):
    Call.objects.filter(pk=call.pk).update(state=Call.State.IN_PROGRESS)
    call.refresh_from_db()
    calls.advance(call, state, duration=12)


class CRM:
    """A receiver behind httpx.MockTransport: answers from a script of statuses, keeps each request."""

    def __init__(self, *statuses):
        self.statuses, self.requests = list(statuses), []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.statuses.pop(0) if self.statuses else 200)

    @property
    def transport(self):
        return httpx.MockTransport(self)


def resolves_to(monkeypatch, address: str) -> None:
    """The customers' names (*.example.com) resolve to `address` (no DNS in tests). Other names go on
    resolving: weburls' socket module is every socket's, the broker's connection included, which a
    test dials anew when no test before it on this xdist worker had."""
    resolve = socket.getaddrinfo

    def customers_at_address(host, *args, **kwargs):
        if str(host).endswith(".example.com"):
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, 443))]
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(weburls.socket, "getaddrinfo", customers_at_address)


def resolves_publicly(monkeypatch):
    # crm.example.com resolves to a public address, as a customer's would.
    resolves_to(monkeypatch, "93.184.216.34")


def test_a_call_that_ends_writes_its_event_for_each_endpoint_that_wants_it(acme, campaign, endpoint):
    make_endpoint(acme, url="https://other.example.com/", events=[Event.CAMPAIGN_ENDED])
    make_endpoint(acme, url="https://paused.example.com/", active=False)
    call = make_call(campaign, state=Call.State.RINGING, transcript=[["caller", "renew please"]], summary="Renewed.")
    end(call)
    event = OutboxEvent.objects.get()
    assert event.payload["data"]["call"]["transcript"] == [["caller", "renew please"]]
    assert event.payload["data"]["call"]["summary"] == "Renewed."
    assert (event.kind, event.payload["type"], event.payload["id"]) == ("call.ended", "call.ended", str(event.uuid))
    assert event.payload["data"]["call"]["id"] == call.pk and event.payload["data"]["call"]["duration"] == 12
    assert event.payload["data"]["contact"]["phone"] == call.phone
    assert list(Delivery.objects.values_list("endpoint", flat=True)) == [endpoint.pk]


def test_the_event_is_written_with_the_change_or_not_at_all(campaign, endpoint):
    call = make_call(campaign, state=Call.State.RINGING)
    with pytest.raises(RuntimeError), transaction.atomic():
        calls.advance(call, Call.State.BUSY)
        raise RuntimeError("the transaction that ended the call fails later")
    assert not OutboxEvent.objects.exists() and not Delivery.objects.exists()
    calls.advance(call, Call.State.BUSY)
    calls.advance(call, Call.State.BUSY)  # a repeated callback changes nothing, and tells nothing again
    assert OutboxEvent.objects.count() == 1


def test_a_campaign_that_completes_or_is_cancelled_tells_once(acme, alice, campaign, endpoint):
    contact = make_contact(campaign)
    campaign.contacts_total = 1
    campaign.save()
    lifecycle.start_campaign(campaign, by=alice)
    lifecycle.cancel_campaign(campaign, by=alice)
    event = OutboxEvent.objects.get(kind=Event.CAMPAIGN_ENDED)
    assert event.payload["data"]["campaign"]["state"] == "cancelled"
    assert event.payload["data"]["campaign"]["counters"]["contacts_done"] == 1
    assert contact.pk


def test_a_delivery_is_signed_retried_with_backoff_and_delivered_once(campaign, endpoint, settings, monkeypatch):
    resolves_publicly(monkeypatch)
    settings.WEBHOOK_RETRY_SECONDS = 10
    end(make_call(campaign, state=Call.State.RINGING))
    sent = Delivery.objects.get()
    crm = CRM(500, 503, 200)

    first = delivery.deliver(sent.pk, transport=crm.transport)
    assert (first.state, first.attempts) == ("pending", 1)
    assert 9 < (first.next_attempt_at - first.tries.get().at).total_seconds() <= 11
    assert delivery.deliver(sent.pk, transport=crm.transport) is None  # not due yet: nothing sent
    for expected_wait in (20, None):
        Delivery.objects.filter(pk=sent.pk).update(next_attempt_at=first.next_attempt_at.replace(year=2000))
        again = delivery.deliver(sent.pk, transport=crm.transport)
        if expected_wait:
            assert 19 < (again.next_attempt_at - again.tries.last().at).total_seconds() <= 21
    assert (again.state, again.attempts) == ("delivered", 3)
    assert delivery.deliver(sent.pk, transport=crm.transport) is None

    ids = {request.headers["Webhook-Id"] for request in crm.requests}
    assert ids == {str(sent.event.uuid)}
    for request in crm.requests:
        timestamp = request.headers["Webhook-Timestamp"]
        mac = hmac.new(endpoint.secret.encode(), f"{timestamp}.".encode() + request.content, hashlib.sha256)
        assert request.headers["Webhook-Signature"] == f"v1={mac.hexdigest()}"
        assert request.headers["Host"] == "crm.example.com" and request.url.host == "93.184.216.34"
        assert json.loads(request.content)["id"] == str(sent.event.uuid)
    assert [t.status_code for t in again.tries.all()] == [500, 503, 200]


def test_a_delivery_gives_up_after_its_attempts_and_a_replay_sends_it_again(campaign, endpoint, settings, monkeypatch):
    resolves_publicly(monkeypatch)
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    end(make_call(campaign, state=Call.State.RINGING))
    sent = Delivery.objects.get()
    down = httpx.MockTransport(lambda request: (_ for _ in ()).throw(httpx.ConnectError("refused")))
    delivery.deliver(sent.pk, transport=down)
    Delivery.objects.filter(pk=sent.pk).update(next_attempt_at=sent.created_at)
    failed = delivery.deliver(sent.pk, transport=down)
    assert (failed.state, failed.attempts) == ("failed", 2)
    assert "ConnectError" in failed.tries.last().error

    assert delivery.replay(failed)
    replayed = delivery.deliver(sent.pk, transport=CRM(200).transport)
    assert (replayed.state, replayed.tries.count()) == ("delivered", 3)


def test_lost_tasks_are_found_by_the_sweep(campaign, endpoint, settings):
    end(make_call(campaign, state=Call.State.RINGING))
    sent = Delivery.objects.get()
    assert delivery.sweep(now=sent.next_attempt_at) == []  # its task is on its way
    later = sent.next_attempt_at.replace(year=sent.next_attempt_at.year + 1)
    assert delivery.sweep(now=later) == [sent.pk]
    Delivery.objects.filter(pk=sent.pk).update(state=Delivery.State.SENDING, claimed_at=sent.next_attempt_at)
    assert delivery.sweep(now=later) == [sent.pk]  # its worker died mid-send


@pytest.mark.parametrize(("url", "reason"), [
    ("http://crm.example.com/hooks", "https"),
    ("https://10.0.0.5/hooks", "private"),
    ("https://169.254.169.254/latest", "private"),
    ("ftp://crm.example.com/", "https"),
    ("http://192.168.1.1:8080/", "private"),
])
def test_only_the_customers_https_addresses_are_accepted(url, reason):
    with pytest.raises(weburls.Refused, match=reason):
        delivery.check_url(url, resolve=False)


def test_a_name_that_resolves_to_a_private_address_is_not_posted_to(campaign, acme, monkeypatch):
    resolves_to(monkeypatch, "10.1.2.3")
    crm = CRM(200)
    make_endpoint(acme, url="https://rebound.example.com/")
    end(make_call(campaign, state=Call.State.RINGING))
    attempted = delivery.deliver(Delivery.objects.get().pk, transport=crm.transport)
    assert crm.requests == [] and "private" in attempted.tries.get().error


def test_loopback_http_is_allowed_only_with_the_dev_allowance(settings):
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    assert delivery.check_url("http://127.0.0.1:8123/hooks") == ("127.0.0.1", 8123)
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    with pytest.raises(weburls.Refused):
        delivery.check_url("http://127.0.0.1:8123/hooks")
