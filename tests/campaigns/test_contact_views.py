"""Contact upload through the pages: receive, check (a task), preview, confirm, import (a task), and the guards."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from campaigns.models import Campaign, Contact, ContactUpload, DoNotCall

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_media")]


def test_upload_preview_and_import(alice_client, campaign, upload, confirm):
    response = upload(alice_client, campaign)
    received = ContactUpload.objects.get()
    assert response.status_code == 302 and response.url == received.get_absolute_url()
    assert received.state == "ready" and received.created_by.email == "alice@example.org"
    preview = alice_client.get(response.url)
    page = preview.content.decode()
    assert [(e["line"], e["reason"]) for e in preview.context["report"].errors] == [
        (3, "invalid phone number"), (4, "duplicate of line 2"),
    ]
    assert "Import 2 contacts" in page and "<code>plan</code>" in page
    assert not Contact.objects.exists()  # the preview writes nothing

    done = confirm(alice_client, received)
    assert "Imported 2 contacts; 2 rows were not imported." in done.content.decode()
    assert Contact.objects.filter(campaign=campaign).count() == 2
    assert Campaign.objects.get(pk=campaign.pk).contacts_total == 2
    again = confirm(alice_client, received)
    assert "not waiting for a confirmation" in again.content.decode()
    assert Contact.objects.count() == 2


def test_the_page_polls_while_a_task_works(alice_client, campaign, upload):
    upload(alice_client, campaign)
    received = ContactUpload.objects.get()
    ContactUpload.objects.filter(pk=received.pk).update(state="importing", progress=40)
    page = alice_client.get(received.get_absolute_url()).content.decode()
    progress_url = reverse("campaigns:upload_progress", args=[campaign.pk, received.pk])
    assert f'data-progress-url="{progress_url}"' in page and 'value="40"' in page
    assert "js/import.js" in page and "<script>" not in page  # no inline script: the CSP forbids it
    assert alice_client.get(progress_url).json() == {"state": "importing", "progress": 40}


def test_every_rejected_row_can_be_downloaded(alice_client, charlie_client, campaign, upload):
    upload(alice_client, campaign)
    received = ContactUpload.objects.get()
    url = reverse("campaigns:rejected", args=[campaign.pk, received.pk])
    rows = b"".join(alice_client.get(url).streaming_content).decode().splitlines()
    assert rows == ["line,phone,problem", "3,not a number,invalid phone number", "4,+919876543210,duplicate of line 2"]
    assert charlie_client.get(url).status_code == 404


def test_the_pages_script_gets_the_uploads_address_or_the_error_as_json(alice_client, campaign, upload):
    response = upload(alice_client, campaign, headers={"Accept": "application/json"})
    assert response.json() == {"next": ContactUpload.objects.get().get_absolute_url()}
    response = upload(alice_client, campaign, data=b"name\nAsha\n", headers={"Accept": "application/json"})
    assert response.status_code == 400 and response.json()["error"].startswith("No phone column")


def test_a_bad_first_line_is_explained_at_the_field(alice_client, campaign, upload):
    response = upload(alice_client, campaign, data=b"name\nAsha\n")
    assert "No phone column" in response.context["form"].errors["file"][0]
    response = upload(alice_client, campaign, data="t\xe9l\xe9phone\n+919876543210\n".encode("latin-1"))
    assert "Line 1 is not UTF-8" in response.context["form"].errors["file"][0]
    assert not ContactUpload.objects.exists()


def test_a_file_too_large_by_its_content_length_is_refused_before_it_is_read(alice_client, campaign, settings, upload):
    settings.UPLOAD_MAX_BYTES = 2**20
    response = upload(alice_client, campaign, data=b"phone\n" + b"+919876543210\n" * 80_000)  # 1.1 MB
    assert response.context["form"].errors["file"] == ["The file is larger than 1 MB: split it into smaller files."]
    assert not ContactUpload.objects.exists()


def test_a_file_past_the_limit_is_stopped_while_it_streams_in(alice_client, campaign, settings, upload):
    settings.UPLOAD_MAX_BYTES = 2**20  # the request's length is within the form's allowance; its file is not
    response = upload(alice_client, campaign, data=b"phone\n" + b"1" * 2**20)
    assert response.context["form"].errors["file"] == ["The file is larger than 1 MB: split it into smaller files."]
    assert not ContactUpload.objects.exists()


def test_the_do_not_call_upload_is_bounded_too(alice_client, settings):
    settings.UPLOAD_MAX_BYTES = 2**20
    file = SimpleUploadedFile("dnc.csv", b"phone\n" + b"+919876543210\n" * 80_000, content_type="text/csv")
    response = alice_client.post(reverse("campaigns:dnc_import"), {"region": "IN", "file": file}, follow=True)
    assert "The file is larger than 1 MB" in response.content.decode()
    assert not DoNotCall.objects.exists()


@pytest.mark.parametrize(("data", "message"), [
    (b"phone,name\n+919876543210,A\x00sha\n", "Line 2 holds a NUL byte"),
    (b"phone,note\n+919876543210," + b"x" * 200_000 + b"\n", "Line 2 is longer than 64 kB"),
], ids=["nul", "200 kB cell"])
def test_a_malformed_file_gets_a_clear_message_not_an_error(alice_client, campaign, data, message, upload):
    response = upload(alice_client, campaign, data=data, follow=True)
    assert response.status_code == 200 and message in response.content.decode()
    assert ContactUpload.objects.get().state == "refused"
    assert not Contact.objects.exists()


def test_a_million_columns_make_no_page_of_them(alice_client, campaign, upload):
    response = upload(alice_client, campaign, data=b"phone" + b",c" * 1_000_000 + b"\n+919876543210\n")
    assert response.status_code == 200 and len(response.content) < 50_000
    assert "Line 1 is longer than 64 kB" in response.context["form"].errors["file"][0]


def test_the_do_not_call_list_is_checked_again_at_import(alice_client, campaign, acme, upload, confirm):
    upload(alice_client, campaign)
    DoNotCall.objects.create(workspace=acme, phone="+919876543211")
    done = confirm(alice_client, ContactUpload.objects.get())
    assert list(Contact.objects.values_list("phone", flat=True)) == ["+919876543210"]
    assert "on the do-not-call list" in done.content.decode()


def test_a_finished_campaign_takes_no_upload(alice_client, campaign, upload):
    Campaign.objects.filter(pk=campaign.pk).update(state="completed")
    assert "takes no more contacts" in upload(alice_client, campaign).context["form"].errors["file"][0]


def test_a_viewer_cannot_upload(alice_client, bob_client, campaign, upload):
    upload(alice_client, campaign)
    received = ContactUpload.objects.get()
    assert upload(bob_client, campaign).status_code == 403
    assert bob_client.post(reverse("campaigns:import", args=[campaign.pk, received.pk])).status_code == 403
    assert not Contact.objects.exists()


def test_charlie_cannot_reach_acmes_upload(alice_client, charlie_client, campaign, upload):
    upload(alice_client, campaign)
    received = ContactUpload.objects.get()
    assert upload(charlie_client, campaign).status_code == 404
    for name in ("upload_status", "upload_progress", "rejected"):
        assert charlie_client.get(reverse(f"campaigns:{name}", args=[campaign.pk, received.pk])).status_code == 404
    assert charlie_client.post(reverse("campaigns:import", args=[campaign.pk, received.pk])).status_code == 404
    assert not Contact.objects.exists()
    assert Campaign.objects.get(pk=campaign.pk).contacts_total == 0
