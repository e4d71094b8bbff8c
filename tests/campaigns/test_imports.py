"""The contact import service: every row either imported or reported by its line, never lost, in bounds."""

import datetime
import io

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from campaigns import csvfile, imports
from campaigns.models import Campaign, Contact, ContactUpload, DoNotCall
from tests.conftest import make_contact

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def private_media(settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}


def file(text: str | bytes) -> io.BytesIO:
    return io.BytesIO(text.encode() if isinstance(text, str) else text)


def run(campaign, text, region="IN") -> ContactUpload:
    return imports.import_now(campaign, file(text), region=region)


def checked(campaign, text) -> ContactUpload:
    upload = imports.receive(campaign, file(text), region="IN", user=None)
    imports.check_upload(upload.pk)
    upload.refresh_from_db()
    return upload


def rejected(upload) -> list[tuple[int, str]]:
    return [(e["line"], e["reason"]) for e in upload.report["errors"]]


def test_it_imports_valid_rows_in_e164_with_extra_columns_as_variables(campaign):
    upload = run(campaign, "phone,name,plan,city\n09876543210,Asha,gold,Pune\n+91 98765 43211,Vikram,,Goa\n")
    assert upload.state == "imported" and upload.report["imported"] == 2 and upload.report["errors"] == []
    contacts = {c.phone: c for c in Contact.objects.filter(campaign=campaign)}
    assert contacts["+919876543210"].name == "Asha"
    assert contacts["+919876543210"].variables == {"plan": "gold", "city": "Pune"}
    assert contacts["+919876543211"].variables == {"city": "Goa"}
    assert all(c.workspace_id == campaign.workspace_id for c in contacts.values())


@pytest.mark.parametrize(("header", "guessed"), [
    ("phone,name,time_zone", {}),
    ("Mobile,Full Name,tz", {"phone": "Mobile", "name": "Full Name", "time_zone": "tz"}),
    ("Phone Number,plan", {"phone": "Phone Number"}),
])
def test_the_preview_says_which_columns_it_read_by_another_name(campaign, header, guessed):
    upload = checked(campaign, f"{header}\n+919876543210,Asha,Asia/Kolkata\n")
    assert upload.report["guessed"] == guessed


def test_the_preview_flags_numbers_no_exophone_of_the_pool_may_call(campaign, alice_client):
    text = "phone\n+919876543210\n+6281234567890\n+6281234567891\n+6591234567\n"
    upload = checked(campaign, text)
    assert upload.report["valid"] == 4  # still imported: the dialler skips them, and a number may join the pool
    assert upload.report["uncallable"] == {"+62": 2, "+65": 1}
    page = alice_client.get(reverse("campaigns:upload_status", args=[campaign.pk, upload.pk])).content.decode()
    assert "2 numbers in +62, 1 number in +65: no Exophone of this campaign may call these countries" in page
    assert run(campaign, "phone\n+6281234567892\n").report["uncallable"] == {"+62": 1}


def test_it_reports_each_bad_row_with_its_line_number(campaign, acme):
    make_contact(campaign, phone="+919876543212")
    DoNotCall.objects.create(workspace=acme, phone="+919876543213")
    text = (
        "phone,name\n"
        "+919876543210,Good\n"  # line 2
        "12345,Short\n"  # line 3
        "+919876543210,Again\n"  # line 4
        "+919876543212,Existing\n"  # line 5
        "+919876543213,Opted out\n"  # line 6
        ",No phone\n"  # line 7
        "\n"  # line 8: blank, not a row
        f"+919876543214,{'n' * 201}\n"  # line 9
        "+919876543215,Fine\n"  # line 10
    )
    upload = run(campaign, text)
    assert rejected(upload) == [
        (3, "invalid phone number"),
        (4, "duplicate of line 2"),
        (5, "already in this campaign"),
        (6, "on the do-not-call list"),
        (7, "no phone number"),
        (9, "name longer than 200 characters"),
    ]
    assert upload.report["imported"] == 2
    assert set(Contact.objects.filter(campaign=campaign).values_list("phone", flat=True)) == {
        "+919876543210", "+919876543212", "+919876543215",
    }


def test_line_numbers_count_quoted_newlines(campaign):
    upload = run(campaign, 'phone,note\n+919876543210,"two\nlines"\nbad,x\n')
    assert [(e["line"], e["phone"]) for e in upload.report["errors"]] == [(4, "bad")]


def test_it_uses_the_chosen_country_for_numbers_without_a_plus(campaign):
    assert run(campaign, "Phone Number,Name\n2025550123,Ann\n", region="US").report["imported"] == 1
    assert Contact.objects.get(campaign=campaign).phone == "+12025550123"


def test_it_adds_to_the_campaigns_contact_total(campaign):
    Campaign.objects.filter(pk=campaign.pk).update(contacts_total=5)
    run(campaign, "phone\n+919876543210\n+919876543211\n")
    campaign.refresh_from_db()
    assert campaign.contacts_total == 7


def test_checking_writes_no_contact_and_keeps_the_parsed_rows(campaign):
    upload = checked(campaign, "phone\n+919876543210\n")
    assert upload.state == "ready" and upload.progress == 100 and upload.report["valid"] == 1
    assert upload.report["sample"] == [{"phone": "+919876543210", "name": "", "variables": {}}]
    assert not Contact.objects.exists()
    assert default_storage.exists(imports.path(upload, imports.PARSED))


def test_the_import_judges_again_what_changed_since_the_preview(campaign, acme):
    upload = checked(campaign, "phone\n+919876543210\n+919876543211\n+919876543212\n")
    DoNotCall.objects.create(workspace=acme, phone="+919876543211")
    make_contact(campaign, phone="+919876543212")
    assert imports.confirm(upload)
    imports.import_upload(upload.pk)
    upload.refresh_from_db()
    assert upload.report["imported"] == 1
    assert rejected(upload) == [(3, "on the do-not-call list"), (4, "already in this campaign")]
    assert Campaign.objects.get(pk=campaign.pk).contacts_total == 1
    # Only what the import needs to show stays: the rejected rows.
    assert not default_storage.exists(imports.path(upload, imports.SOURCE))
    assert not default_storage.exists(imports.path(upload, imports.PARSED))
    assert default_storage.open(imports.path(upload, imports.REJECTED)).read().decode().splitlines() == [
        "line,phone,problem", "3,+919876543211,on the do-not-call list", "4,+919876543212,already in this campaign",
    ]


def test_an_import_delivered_twice_writes_each_contact_once(campaign):
    upload = checked(campaign, "phone\n+919876543210\n+919876543211\n")
    assert imports.confirm(upload) and not imports.confirm(upload)
    imports.import_upload(upload.pk)
    imports.import_upload(upload.pk)
    assert Contact.objects.filter(campaign=campaign).count() == 2
    assert Campaign.objects.get(pk=campaign.pk).contacts_total == 2


def test_it_imports_in_windows_and_reports_in_line_order(campaign, monkeypatch):
    monkeypatch.setattr(csvfile, "BATCH", 3)
    rows = [f"+9198765{n:05d}" if n % 4 else "bad" for n in range(1, 11)]
    upload = run(campaign, "phone\n" + "\n".join(rows) + "\n")
    assert upload.report["imported"] == 8
    assert rejected(upload) == [(5, "invalid phone number"), (9, "invalid phone number")]


def test_a_file_without_a_phone_column_is_refused_on_arrival(campaign):
    with pytest.raises(imports.ImportRefused, match="No phone column"):
        imports.receive(campaign, file("name,city\nAsha,Pune\n"), region="IN", user=None)
    assert not ContactUpload.objects.exists()


def test_a_file_that_is_not_utf8_is_refused_with_its_line(campaign):
    upload = checked(campaign, "phone,name\n+919876543210,Asha\n+919876543211,Jos\xe9\n".encode("latin-1"))
    assert upload.state == "refused"
    assert upload.message.startswith("Line 3 is not UTF-8 text") and "CSV UTF-8" in upload.message
    assert not Contact.objects.exists()


def test_a_nul_byte_refuses_the_file_with_its_line(campaign):
    upload = checked(campaign, b"phone,name\n+919876543210,Asha\n+919876543211,A\x00sha\n")
    assert upload.state == "refused" and upload.message.startswith("Line 3 holds a NUL byte")
    assert not default_storage.exists(imports.path(upload, imports.SOURCE))


def test_too_many_rows_refuse_the_file(campaign, monkeypatch):
    monkeypatch.setattr(csvfile, "MAX_ROWS", 3)
    upload = checked(campaign, "phone\n" + "".join(f"+9198765{n:05d}\n" for n in range(4)))
    assert upload.state == "refused"
    assert upload.message == "The file has more than 3 rows (line 5): split it into smaller files."


def test_too_many_columns_refuse_the_file_on_arrival(campaign):
    header = "phone," + ",".join(f"c{n}" for n in range(csvfile.MAX_COLUMNS))
    with pytest.raises(imports.ImportRefused, match=f"names {csvfile.MAX_COLUMNS + 1} columns; .* at most 50"):
        imports.receive(campaign, file(header + "\n"), region="IN", user=None)


def test_a_million_columns_are_refused_before_the_line_is_read_whole(campaign):
    with pytest.raises(imports.ImportRefused, match="Line 1 is longer than 64 kB"):
        imports.receive(campaign, file("phone" + ",x" * 1_000_000 + "\n"), region="IN", user=None)


def test_a_long_value_rejects_its_row_and_a_huge_one_the_file(campaign):
    upload = run(campaign, f"phone,note\n+919876543210,{'x' * 1001}\n+919876543211,ok\n")
    assert rejected(upload) == [(2, "a value longer than 1,000 characters")]
    assert upload.report["imported"] == 1
    # Over the csv module's own limit (128 kB), a quoted value spanning lines: the file, with its line.
    upload = checked(campaign, 'phone,note\n+919876543212,"' + ("y" * 60_000 + "\n") * 3 + '"\n')
    assert upload.state == "refused" and upload.message.startswith("Line 4 cannot be read as CSV")


def test_a_file_of_one_repeated_row_keeps_a_bounded_report(campaign):
    upload = run(campaign, "phone,name\n" + "+919876543210,Asha\n" * 2000)
    assert upload.report["imported"] == 1 and upload.report["rejected"] == 1999
    assert len(upload.report["errors"]) == imports.ERRORS_SHOWN
    assert upload.report["reasons"] == {"duplicate in the file": 1999}
    lines = default_storage.open(imports.path(upload, imports.REJECTED)).read().decode().splitlines()
    assert len(lines) == 2000 and lines[-1] == "2001,+919876543210,duplicate of line 2"


def test_a_finished_campaign_takes_no_contacts(campaign):
    Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.CANCELLED)
    campaign.refresh_from_db()
    with pytest.raises(imports.ImportRefused, match="cancelled"):
        run(campaign, "phone\n+919876543210\n")
    assert not Contact.objects.exists()


def test_a_campaign_finished_during_the_import_stops_it_with_a_reason(campaign):
    upload = checked(campaign, "phone\n+919876543210\n")
    imports.confirm(upload)
    Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.CANCELLED)
    imports.import_upload(upload.pk)
    upload.refresh_from_db()
    assert upload.state == "imported" and upload.report["imported"] == 0
    assert upload.message == "The campaign is cancelled: it takes no more contacts. The import stopped at line 2."
    assert not Contact.objects.exists()


def test_tens_of_thousands_of_rows_are_all_imported(campaign, acme):
    numbers = [f"+9198{n:08d}" for n in range(20_000)]
    DoNotCall.objects.bulk_create([DoNotCall(workspace=acme, phone=p) for p in numbers[:10]])
    upload = run(campaign, "phone,name,ref\n" + "".join(f"{p},Name {i},{i}\n" for i, p in enumerate(numbers)))
    assert upload.report["imported"] == 19_990 and upload.report["rejected"] == 10
    assert Contact.objects.filter(campaign=campaign).count() == 19_990


def test_uploads_not_confirmed_within_a_day_are_forgotten_with_their_files(campaign):
    stale, recent, done = (checked(campaign, "phone\n+919876543210\n") for _ in range(3))
    imports.confirm(done)
    imports.import_upload(done.pk)
    day_ago = timezone.now() - datetime.timedelta(days=1, minutes=1)
    ContactUpload.objects.filter(pk__in=[stale.pk, done.pk]).update(created_at=day_ago)
    assert imports.forget_stale_uploads() == 1
    assert set(ContactUpload.objects.values_list("pk", flat=True)) == {recent.pk, done.pk}
    assert not default_storage.exists(imports.path(stale, imports.PARSED))
    assert not default_storage.exists(imports.path(stale, imports.REJECTED))
    assert default_storage.exists(imports.path(recent, imports.PARSED))
