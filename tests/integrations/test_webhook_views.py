"""The webhooks pages: admins add endpoints (URLs checked), see each delivery's attempts and replay them."""

import pytest

from campaigns.models import Call
from integrations.models import Delivery, WebhookEndpoint
from tests.conftest import make_call
from tests.integrations.test_webhooks import end

pytestmark = pytest.mark.django_db


def test_an_admin_adds_an_endpoint_and_sees_its_secret(alice_client, acme):
    response = alice_client.post("/integrations/webhooks/", {"url": "https://crm.example.com/hooks",
                                                             "events": ["call.ended"]}, follow=True)
    endpoint = WebhookEndpoint.objects.get(workspace=acme)
    assert endpoint.secret.startswith("whsec_") and endpoint.secret.encode() in response.content
    assert endpoint.events == ["call.ended"]


@pytest.mark.parametrize("url", ["http://crm.example.com/", "https://10.0.0.1/", "javascript:alert(1)"])
def test_an_address_that_is_not_the_customers_is_refused(alice_client, url):
    response = alice_client.post("/integrations/webhooks/", {"url": url, "events": ["call.ended"]})
    assert response.status_code == 200 and not WebhookEndpoint.objects.exists()


def test_history_shows_attempts_and_a_replay_sends_again(alice_client, acme, campaign, django_capture_on_commit_callbacks):
    endpoint = WebhookEndpoint.objects.create(workspace=acme, url="https://crm.example.com/", secret="s",
                                              events=["call.ended"])
    end(make_call(campaign, state=Call.State.RINGING))
    sent = Delivery.objects.get()
    Delivery.objects.filter(pk=sent.pk).update(state=Delivery.State.FAILED, attempts=8)
    page = alice_client.get(f"/integrations/webhooks/{endpoint.pk}/")
    assert str(sent.event.uuid).encode() in page.content and b"failed" in page.content
    with django_capture_on_commit_callbacks() as sends:
        alice_client.post(f"/integrations/webhooks/{endpoint.pk}/deliveries/{sent.pk}/replay/")
    sent.refresh_from_db()
    assert (sent.state, sent.attempts, len(sends)) == ("pending", 0, 1)


def test_charlie_reaches_no_endpoint_of_acme(charlie_client, bob_client, acme, campaign):
    endpoint = WebhookEndpoint.objects.create(workspace=acme, url="https://acme-crm.example.com/", secret="s",
                                              events=["call.ended"])
    end(make_call(campaign, state=Call.State.RINGING))
    sent = Delivery.objects.get()
    for url in (f"/integrations/webhooks/{endpoint.pk}/", f"/integrations/webhooks/{endpoint.pk}/toggle/",
                f"/integrations/webhooks/{endpoint.pk}/delete/",
                f"/integrations/webhooks/{endpoint.pk}/deliveries/{sent.pk}/replay/"):
        assert charlie_client.post(url).status_code == 404, url
        assert bob_client.post(url).status_code == 403, url
    assert b"acme-crm" not in charlie_client.get("/integrations/webhooks/").content
    endpoint.refresh_from_db()
    assert endpoint.active and Delivery.objects.get().state == "pending"
