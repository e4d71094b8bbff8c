"""CSV leaving the system: a cell a spreadsheet would run as a formula is written as text (OWASP)."""

import csv
import io

import pytest
from django.urls import reverse

from campaigns import export
from campaigns.models import ContactUpload
from tests.conftest import make_call, make_contact

pytestmark = pytest.mark.django_db

HOSTILE = ['=HYPERLINK("http://evil.example","x")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\tcalc", "\rcalc"]


def read(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.parametrize("value", HOSTILE)
def test_a_formula_is_written_as_text(value):
    assert export.defused(value) == "'" + value


@pytest.mark.parametrize("value", ["+919876543210", "-3", "-1.5", "Asha", "", "a=b", 42, None])
def test_numbers_and_plain_text_stay_as_they_are(value):
    assert export.defused(value) == value


def test_the_calls_export_defuses_what_webhooks_and_uploads_brought(bob_client, campaign):
    contact = make_contact(campaign, name=HOSTILE[1], phone="+919876543210")
    make_call(campaign, contact=contact, disposition=HOSTILE[0], detailed_status=HOSTILE[3], error=HOSTILE[4],
              disconnected_by=HOSTILE[2])
    response = bob_client.get(reverse("campaigns:export", args=[campaign.pk]))
    header, row = read(b"".join(response.streaming_content).decode())
    cells = dict(zip(header, row, strict=True))
    assert cells["phone"] == "+919876543210"
    assert cells["contact_name"] == "'" + HOSTILE[1]
    assert (cells["disposition"], cells["detailed_status"], cells["error"], cells["disconnected_by"]) == (
        "'" + HOSTILE[0], "'" + HOSTILE[3], "'" + HOSTILE[4], "'" + HOSTILE[2]
    )


@pytest.mark.usefixtures("private_media")
def test_the_rejected_rows_download_defuses_the_uploaded_cells(alice_client, campaign, upload):
    data = b'phone,name\n"=HYPERLINK(""http://evil.example"",""x"")",Bad\n@SUM(A1),Worse\n'
    upload(alice_client, campaign, data)
    response = alice_client.get(reverse("campaigns:rejected", args=[campaign.pk, ContactUpload.objects.get().pk]))
    rows = read(b"".join(response.streaming_content).decode())
    assert [row[1] for row in rows[1:]] == ["'" + HOSTILE[0], "'@SUM(A1)"]
