"""Contact upload through the pages: upload, preview with every rejected row, confirm, and the guards."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from campaigns import imports
from campaigns.models import Campaign, Contact, DoNotCall

pytestmark = pytest.mark.django_db

CSV = b"phone,name,plan\n+919876543210,Asha,gold\nnot a number,Bad,\n+919876543210,Dup,\n09876543211,Vikram,silver\n"


@pytest.fixture(autouse=True)
def private_media(settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}


def upload(client, campaign, data=CSV, **headers):
    file = SimpleUploadedFile("contacts.csv", data, content_type="text/csv")
    return client.post(reverse("campaigns:upload", args=[campaign.pk]), {"file": file, "region": "IN"}, **headers)


def test_upload_preview_and_import(alice_client, campaign):
    response = upload(alice_client, campaign)
    assert response.status_code == 302 and "/contacts/preview/" in response.url
    preview = alice_client.get(response.url)
    page = preview.content.decode()
    assert [(e.line, e.reason) for e in preview.context["errors"]] == [
        (3, "invalid phone number"), (4, "duplicate of line 2"),
    ]
    assert "Import 2 contacts" in page and "<code>plan</code>" in page
    assert not Contact.objects.exists()  # the preview writes nothing

    key = preview.context["confirm"].initial["key"]
    done = alice_client.post(reverse("campaigns:import", args=[campaign.pk]), {"key": key, "region": "IN"}, follow=True)
    assert "Imported 2 contacts; 2 rows were not imported." in done.content.decode()
    assert Contact.objects.filter(campaign=campaign).count() == 2
    campaign.refresh_from_db()
    assert campaign.contacts_total == 2
    with pytest.raises(imports.ImportRefused):
        imports.unstash(campaign, key)  # the stashed rows are gone


def test_every_rejected_row_can_be_downloaded(alice_client, charlie_client, campaign):
    key = alice_client.get(upload(alice_client, campaign).url).context["confirm"].initial["key"]
    url = reverse("campaigns:rejected", args=[campaign.pk, key])
    rows = alice_client.get(url).content.decode().splitlines()
    assert rows == ["line,phone,problem", "3,not a number,invalid phone number", "4,+919876543210,duplicate of line 2"]
    assert charlie_client.get(url).status_code == 404
    assert alice_client.get(reverse("campaigns:rejected", args=[campaign.pk, "y" * 32])).status_code == 404


def test_the_pages_script_gets_the_preview_address_as_json(alice_client, campaign):
    response = upload(alice_client, campaign, headers={"Accept": "application/json"})
    assert response.json()["preview"].startswith(f"/campaigns/{campaign.pk}/contacts/preview/")


def test_a_bad_file_is_explained_at_the_field(alice_client, campaign):
    response = upload(alice_client, campaign, data=b"name\nAsha\n")
    assert "No phone column" in response.context["form"].errors["file"][0]
    response = upload(alice_client, campaign, data="phone\n+919876543210,Jos\xe9\n".encode("latin-1"))
    assert "not UTF-8" in response.context["form"].errors["file"][0]


def test_a_missing_file_is_an_error_at_the_field(alice_client, campaign):
    response = alice_client.post(reverse("campaigns:upload", args=[campaign.pk]), {"region": "IN"})
    assert "file" in response.context["form"].errors


def test_a_forged_or_expired_key_imports_nothing(alice_client, campaign):
    response = alice_client.post(reverse("campaigns:import", args=[campaign.pk]),
                                 {"key": "x" * 32, "region": "IN"}, follow=True)
    assert "upload the file again" in response.content.decode()
    assert not Contact.objects.exists()


def test_the_do_not_call_list_is_checked_again_at_import(alice_client, campaign, acme):
    preview = alice_client.get(upload(alice_client, campaign).url)
    DoNotCall.objects.create(workspace=acme, phone="+919876543211")
    key = preview.context["confirm"].initial["key"]
    alice_client.post(reverse("campaigns:import", args=[campaign.pk]), {"key": key, "region": "IN"})
    assert list(Contact.objects.values_list("phone", flat=True)) == ["+919876543210"]


def test_a_finished_campaign_takes_no_upload(alice_client, campaign):
    Campaign.objects.filter(pk=campaign.pk).update(state="completed")
    assert "takes no more contacts" in upload(alice_client, campaign).context["form"].errors["file"][0]


def test_a_viewer_cannot_upload(bob_client, campaign):
    assert upload(bob_client, campaign).status_code == 403
    assert bob_client.post(reverse("campaigns:import", args=[campaign.pk]), {"key": "x" * 32}).status_code == 403


def test_charlie_cannot_upload_preview_or_import_into_acmes_campaign(alice_client, charlie_client, campaign):
    key = alice_client.get(upload(alice_client, campaign).url).context["confirm"].initial["key"]
    assert upload(charlie_client, campaign).status_code == 404
    assert charlie_client.get(reverse("campaigns:preview", args=[campaign.pk, key])).status_code == 404
    response = charlie_client.post(reverse("campaigns:import", args=[campaign.pk]), {"key": key, "region": "IN"})
    assert response.status_code == 404
    assert not Contact.objects.exists()
    assert Campaign.objects.get(pk=campaign.pk).contacts_total == 0
