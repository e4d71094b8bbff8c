"""Do-not-call files (an operator's CSV, the national registry's scrub file) imported by a task while
the workspace's dialling is held, and campaigns that require a recent registry scrub."""

import datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from campaigns import csvfile, dncfiles, donotcall, lifecycle, tasks
from campaigns.models import Call, Campaign, DoNotCall, DoNotCallImport, InvalidTransition
from tests.campaigns.test_dispatcher import NOON_FRIDAY, start, tick
from tests.conftest import make_contact

pytestmark = pytest.mark.usefixtures("private_media")
TODAY = NOON_FRIDAY.date()


def post_file(committed, client, url_name, data: bytes, **fields):
    file = SimpleUploadedFile("numbers.csv", data, content_type="text/csv")
    return committed(client.post, reverse(f"campaigns:{url_name}"), {"region": "IN", "file": file, **fields},
                     follow=True)


def test_an_operators_file_adds_valid_numbers_and_lists_bad_rows(alice_client, acme, committed):
    DoNotCall.objects.create(workspace=acme, phone="+919876543210")
    page = post_file(committed, alice_client, "dnc_import", b"phone\n+919876543210\n09876543211\nbad\n09876543211\n")
    job = DoNotCallImport.objects.get()
    assert (job.state, job.added, job.already, job.rejected, job.progress) == ("imported", 1, 2, 1, 100)
    assert job.errors == [{"line": 4, "phone": "bad", "reason": "invalid phone number"}]
    assert "1 added, 2 already listed, 1 row not imported" in page.content.decode()
    assert set(DoNotCall.objects.values_list("phone", "source")) == {("+919876543210", "manual"),
                                                                     ("+919876543211", "upload")}


def test_a_registry_file_of_bare_numbers_is_imported_with_its_date(alice_client, acme, committed):
    page = post_file(committed, alice_client, "dnc_registry", b"9876543210\n9876543211\n12\n",
                     file_date="2026-11-20")
    job = DoNotCallImport.objects.get()
    assert (job.source, job.file_date, job.added, job.errors) == (
        "registry", datetime.date(2026, 11, 20), 2, [{"line": 3, "phone": "12", "reason": "invalid phone number"}])
    assert DoNotCall.objects.filter(source="registry").count() == 2
    assert donotcall.latest_scrub_date(acme.pk) == datetime.date(2026, 11, 20)
    listing = alice_client.get(reverse("campaigns:dnc"), {"source": "registry"}).content.decode()
    assert "+919876543210" in listing and "the newest file imported is dated 2026-11-20" in listing
    assert "National registry scrub of 2026-11-20" in page.content.decode()


def test_a_registry_file_needs_its_date_and_a_file_without_numbers_is_refused(alice_client, committed):
    page = post_file(committed, alice_client, "dnc_registry", b"9876543210\n")
    assert "This field is required" in page.content.decode()
    page = post_file(committed, alice_client, "dnc_registry", b"name\nAsha\n", file_date="2026-11-20")
    assert "No phone column" in page.content.decode()
    assert not DoNotCallImport.objects.exists()


def test_the_gate_stays_closed_from_receipt_to_the_end_of_the_import(campaign, alice, acme, sent,
                                                                     django_capture_on_commit_callbacks):
    start(campaign, alice, contacts=2, calls_per_minute=600, pace_credit=5, paced_at=NOON_FRIDAY)
    listed = campaign.contacts.order_by("pk").first().phone
    job = dncfiles.receive(acme, SimpleUploadedFile("r.csv", listed.encode() + b"\n"), source="registry",
                           region="IN", user=alice, file_date=TODAY)
    with pytest.raises(donotcall.GateClosed, match="being imported"):
        donotcall.check_gate(acme.pk)
    tick(NOON_FRIDAY, django_capture_on_commit_callbacks)
    assert not Call.objects.exists()

    dncfiles.import_file(job.pk)
    tick(NOON_FRIDAY + datetime.timedelta(seconds=10), django_capture_on_commit_callbacks)
    assert list(Call.objects.values_list("phone", flat=True)) != [listed] and Call.objects.count() == 1
    assert campaign.contacts.get(phone=listed).outcome == "do-not-call"


def test_a_large_registry_file_is_streamed_in_windows_with_progress(acme, alice, monkeypatch):
    numbers = [f"9{n:09d}" for n in range(800_000_000, 800_000_000 + 2500)]
    job = dncfiles.receive(acme, SimpleUploadedFile("r.csv", ("\n".join(numbers) + "\n").encode()),
                           source="registry", region="IN", user=alice, file_date=TODAY)
    windows, progress = [], []
    real_upsert, real_progress = dncfiles._upsert, dncfiles.imports.record_progress
    monkeypatch.setattr(dncfiles, "_upsert", lambda job, phones: windows.append(len(phones)) or real_upsert(job, phones))
    monkeypatch.setattr(dncfiles.imports, "record_progress",
                        lambda row, done, total: progress.append(done * 100 // total) or real_progress(row, done, total))
    dncfiles.import_file(job.pk)
    assert windows == [csvfile.BATCH, csvfile.BATCH, 500]
    assert progress == sorted(progress) and progress[-1] == 100
    assert DoNotCallImport.objects.get().added == DoNotCall.objects.count() == 2500


def test_an_import_that_fails_says_so_and_opens_the_gate(acme, alice, monkeypatch):
    job = dncfiles.receive(acme, SimpleUploadedFile("r.csv", b"9876543210\n"), source="upload", region="IN",
                           user=alice)
    monkeypatch.setattr(dncfiles, "_upsert", lambda job, phones: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        dncfiles.import_file(job.pk)
    job.refresh_from_db()
    assert job.state == "refused" and "import the file again" in job.message
    donotcall.check_gate(acme.pk)  # open


def test_an_import_whose_task_was_lost_is_sent_again_and_never_imported_twice_at_once(acme, alice,
                                                                                        monkeypatch):
    job = dncfiles.receive(acme, SimpleUploadedFile("r.csv", b"9876543210\n"), source="upload", region="IN",
                           user=alice)  # its task's message is lost: a broker restart
    resent = []
    monkeypatch.setattr(tasks.import_dnc_file, "delay", resent.append)
    tasks.resume_stalled_dnc_imports()
    assert resent == []  # not yet: the task may only be waiting its turn
    later = timezone.now() + dncfiles.STALLED_AFTER + datetime.timedelta(seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    tasks.resume_stalled_dnc_imports()
    assert resent == [job.pk]
    with pytest.raises(donotcall.GateClosed):
        donotcall.check_gate(acme.pk)  # held all along

    # A task at work on it keeps it: a second delivery meanwhile does nothing.
    DoNotCallImport.objects.filter(pk=job.pk).update(worked_at=later)
    dncfiles.import_file(job.pk)
    assert DoNotCallImport.objects.get(pk=job.pk).state == DoNotCallImport.State.IMPORTING
    assert dncfiles.stalled(now=later) == []

    # Its worker dies; once it has been silent long enough, the next task imports the file.
    monkeypatch.setattr(timezone, "now", lambda: later + dncfiles.STALLED_AFTER + datetime.timedelta(seconds=1))
    dncfiles.import_file(job.pk)
    job.refresh_from_db()
    assert (job.state, job.added) == (DoNotCallImport.State.IMPORTED, 1)
    donotcall.check_gate(acme.pk)  # open


def registry(acme, alice, dated):
    DoNotCallImport.objects.create(workspace=acme, source="registry", region="IN", file_date=dated,
                                   state=DoNotCallImport.State.IMPORTED)


def test_a_campaign_that_requires_a_scrub_refuses_to_start_without_a_recent_one(campaign, alice, acme):
    make_contact(campaign)
    Campaign.objects.filter(pk=campaign.pk).update(scrub_max_age_days=7)
    campaign.refresh_from_db()
    with pytest.raises(InvalidTransition, match="newer than 7 days; none has been imported"):
        lifecycle.start_campaign(campaign, by=alice, now=NOON_FRIDAY)
    registry(acme, alice, TODAY - datetime.timedelta(days=7))
    with pytest.raises(InvalidTransition, match="dated 2026-11-20 \\(7 days old\\)"):
        lifecycle.start_campaign(campaign, by=alice, now=NOON_FRIDAY)
    registry(acme, alice, TODAY - datetime.timedelta(days=6))
    lifecycle.start_campaign(campaign, by=alice, now=NOON_FRIDAY)
    assert campaign.state == Campaign.State.RUNNING


def test_the_start_button_shows_why_it_was_refused(alice_client, campaign):
    make_contact(campaign)
    Campaign.objects.filter(pk=campaign.pk).update(scrub_max_age_days=3)
    page = alice_client.post(reverse("campaigns:start", args=[campaign.pk]), follow=True).content.decode()
    assert "requires a national registry scrub newer than 3 days" in page
    assert Campaign.objects.get(pk=campaign.pk).state == Campaign.State.DRAFT


def test_a_running_campaign_pauses_when_its_scrub_ages_past_the_limit(campaign, alice, acme, sent,
                                                                      django_capture_on_commit_callbacks):
    registry(acme, alice, TODAY - datetime.timedelta(days=1))
    start(campaign, alice, contacts=3, calls_per_minute=600, pace_credit=1, paced_at=NOON_FRIDAY,
          scrub_max_age_days=2)
    tick(NOON_FRIDAY, django_capture_on_commit_callbacks)
    assert Call.objects.count() == 1
    tick(NOON_FRIDAY + datetime.timedelta(days=1), django_capture_on_commit_callbacks)
    campaign.refresh_from_db()
    # Paused: the call still queued is withdrawn (Exotel never saw it), nothing new is dialled.
    assert campaign.state == Campaign.State.PAUSED and not Call.objects.exists()
    assert campaign.last_error.endswith("dated 2026-11-26 (2 days old).")
    with pytest.raises(InvalidTransition, match="2 days old"):
        lifecycle.resume_campaign(campaign, by=alice, now=NOON_FRIDAY + datetime.timedelta(days=1))


def test_the_registry_file_has_a_larger_upload_limit_than_other_files(alice_client, committed, settings):
    settings.UPLOAD_MAX_BYTES, settings.REGISTRY_UPLOAD_MAX_BYTES = 2**20, 4 * 2**20
    numbers = b"".join(f"9{n:09d}\n".encode() for n in range(800_000_000, 800_100_000))  # 1.1 MB
    page = post_file(committed, alice_client, "dnc_import", numbers)
    assert "The file is larger than 1 MB" in page.content.decode()
    post_file(committed, alice_client, "dnc_registry", numbers, file_date="2026-11-20")
    assert DoNotCallImport.objects.get().added == DoNotCall.objects.count() == 100_000
    page = post_file(committed, alice_client, "dnc_registry", numbers * 4, file_date="2026-11-21")
    assert "The file is larger than 4 MB" in page.content.decode()


def test_charlie_cannot_see_acmes_file(charlie_client, acme, alice):
    job = dncfiles.receive(acme, SimpleUploadedFile("r.csv", b"9876543210\n"), source="upload", region="IN",
                           user=alice)
    assert charlie_client.get(reverse("campaigns:dnc_file", args=[job.pk])).status_code == 404
    assert charlie_client.get(reverse("campaigns:dnc_file_progress", args=[job.pk])).status_code == 404
