"""The JSON API with an API key: campaigns made, filled from CSV, run and read; every other workspace's
ids look missing."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from campaigns.models import Call, Campaign, Contact
from integrations import keys
from integrations.models import ApiKey
from tests.conftest import make_account, make_call, make_campaign
from tests.integrations.conftest import key_client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_media")]
CSV = b"phone,name,plan\n+919876543210,Asha,gold\nnot a number,Bad,\n+919876543210,Dup,\n09876543211,Vikram,silver\n"


def new_campaign(client, through, **fields):
    body = {"name": "Renewals", "account": through.pk, "exophones": [e.pk for e in through.exophones.all()],
            "window_start": "00:00", "window_end": "23:59:59", "weekdays": [1, 2, 3, 4, 5, 6, 7], **fields}
    return client.post("/api/v1/campaigns", body, content_type="application/json")


@pytest.fixture
def account(acme):
    return make_campaign(acme).account  # an account with an Exophone


def test_a_campaign_is_made_filled_from_csv_and_started(acme_api, account, eager):
    response = new_campaign(acme_api, account, calls_per_minute=30)
    assert response.status_code == 201, response.json()
    made = response.json()
    assert (made["state"], made["calls_per_minute"], made["max_attempts"]) == ("draft", 30, 3)
    campaign = f"/api/v1/campaigns/{made['id']}"

    file = SimpleUploadedFile("contacts.csv", CSV, content_type="text/csv")
    upload = eager(acme_api.post, f"{campaign}/uploads", {"file": file, "region": "IN"}).json()
    checked = acme_api.get(f"{campaign}/uploads/{upload['id']}").json()
    assert checked["state"] == "ready"
    assert [(e["line"], e["reason"].split()[0]) for e in checked["report"]["errors"]] == [(3, "invalid"), (4, "duplicate")]
    assert eager(acme_api.post, f"{campaign}/uploads/{upload['id']}/confirm").status_code == 202
    assert acme_api.get(f"{campaign}/uploads/{upload['id']}").json()["report"]["imported"] == 2
    assert b"invalid phone number" in b"".join(acme_api.get(f"{campaign}/uploads/{upload['id']}/rejected"))

    started = acme_api.post(f"{campaign}/start")
    assert started.status_code == 200 and started.json()["state"] == "running"
    assert started.json()["counters"]["contacts_total"] == 2
    assert acme_api.post(f"{campaign}/pause").json()["state"] == "paused"
    assert acme_api.post(f"{campaign}/cancel").json()["state"] == "cancelled"
    refused = acme_api.post(f"{campaign}/resume")
    assert refused.status_code == 409 and "cancelled" in refused.json()["detail"]


def test_a_campaign_is_refused_with_the_forms_reasons(acme_api, account, globex):
    other = make_account(globex)
    response = new_campaign(acme_api, account, account=other.pk, time_zone="Mars/Olympus", bot_kind="relay",
                            bot_settings={"url": "ftp://bot"})
    assert response.status_code == 422
    assert set(response.json()["detail"]) >= {"account", "time_zone", "bot_settings"}
    assert Campaign.objects.count() == 1  # the fixture's


def test_a_campaign_without_contacts_cannot_start(acme_api, account):
    made = new_campaign(acme_api, account).json()
    response = acme_api.post(f"/api/v1/campaigns/{made['id']}/start")
    assert response.status_code == 409 and "contacts" in response.json()["detail"]


def test_an_upload_without_a_phone_column_is_refused_at_once(acme_api, campaign):
    file = SimpleUploadedFile("contacts.csv", b"name,plan\nAsha,gold\n", content_type="text/csv")
    response = acme_api.post(f"/api/v1/campaigns/{campaign.pk}/uploads", {"file": file})
    assert response.status_code == 422 and "phone" in str(response.json()["detail"]["file"])


def test_calls_are_read_a_page_at_a_time_and_filtered(acme_api, campaign):
    for i in range(55):
        make_call(campaign, state=Call.State.COMPLETED if i % 5 else Call.State.BUSY, disposition="sale" if i == 7 else "")
    first = acme_api.get("/api/v1/calls").json()
    second = acme_api.get("/api/v1/calls", {"after": first["next"]}).json()
    assert (len(first["items"]), len(second["items"]), second["next"]) == (50, 5, None)
    assert len({c["id"] for c in first["items"] + second["items"]}) == 55
    assert len(acme_api.get("/api/v1/calls", {"state": "busy"}).json()["items"]) == 11
    assert [c["disposition"] for c in acme_api.get("/api/v1/calls", {"disposition": "sale"}).json()["items"]] == ["sale"]
    one = first["items"][0]
    assert acme_api.get(f"/api/v1/calls/{one['id']}").json() == one
    assert acme_api.get("/api/v1/calls", {"state": "bogus"}).status_code == 422


def test_campaigns_are_listed_by_state_a_page_at_a_time(acme_api, acme):
    for i in range(52):
        make_campaign(acme, name=f"c{i}", state=Campaign.State.PAUSED if i < 2 else Campaign.State.DRAFT)
    first = acme_api.get("/api/v1/campaigns").json()
    second = acme_api.get("/api/v1/campaigns", {"after": first["next"]}).json()
    assert (len(first["items"]), len(second["items"])) == (50, 2)
    assert {c["name"] for c in acme_api.get("/api/v1/campaigns", {"state": "paused"}).json()["items"]} == {"c0", "c1"}


def test_a_key_of_another_workspace_finds_nothing_and_changes_nothing(globex_api, campaign, eager):
    call = make_call(campaign)
    file = SimpleUploadedFile("contacts.csv", CSV, content_type="text/csv")
    paths = [("get", f"/api/v1/campaigns/{campaign.pk}"), ("get", f"/api/v1/calls/{call.pk}"),
             ("post", f"/api/v1/campaigns/{campaign.pk}/start"), ("post", f"/api/v1/campaigns/{campaign.pk}/cancel"),
             ("post", f"/api/v1/campaigns/{campaign.pk}/uploads")]
    for method, path in paths:
        response = getattr(globex_api, method)(path, {"file": file} if path.endswith("uploads") else None)
        assert response.status_code == 404, path
        assert b"Renewals" not in response.content
    assert globex_api.get("/api/v1/campaigns").json()["items"] == []
    assert globex_api.get("/api/v1/calls").json()["items"] == []
    assert globex_api.get("/api/v1/calls", {"campaign": campaign.pk}).status_code == 422
    campaign.refresh_from_db()
    assert campaign.state == "draft" and not Contact.objects.exclude(pk=call.contact_id).exists()


def test_a_read_key_cannot_write_and_a_revoked_or_wrong_key_cannot_read(acme, alice, campaign):
    reader = key_client(acme, alice, scopes=[ApiKey.Scope.READ])
    assert reader.get(f"/api/v1/campaigns/{campaign.pk}").status_code == 200
    assert reader.post(f"/api/v1/campaigns/{campaign.pk}/cancel").status_code == 403
    key, plain = keys.create_key(acme, name="old", scopes=[ApiKey.Scope.READ], by=alice)
    keys.revoke_key(key)
    for header in (f"Bearer {plain}", f"Bearer {plain[:-1]}x", "Bearer as_nothing_here", ""):
        assert Client(headers={"Authorization": header}).get("/api/v1/campaigns").status_code == 401
    campaign.refresh_from_db()
    assert campaign.state == "draft"


def test_a_key_is_kept_as_a_hash_and_notes_when_it_was_used(acme, alice):
    key, plain = keys.create_key(acme, name="CRM", scopes=[ApiKey.Scope.READ], by=alice)
    assert plain not in str(ApiKey.objects.filter(pk=key.pk).values().get())
    assert key.last_used_at is None
    Client(headers={"Authorization": f"Bearer {plain}"}).get("/api/v1/campaigns")
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_the_openapi_document_is_published(client):
    document = client.get("/api/v1/openapi.json").json()
    assert {"/api/v1/campaigns", "/api/v1/calls", "/api/v1/campaigns/{campaign_id}/uploads"} <= set(document["paths"])
    assert document["components"]["securitySchemes"]
