"""Shared by the campaigns tests: the contact upload's pages (private storage, requests whose Celery
tasks run in the test) and the Exotel simulator, started once per module with its `SIMULATOR_CONFIG`."""

import json

import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from config.celery import app as celery_app
from tenancy.models import Workspace
from tests import processes

UPLOAD_CSV = b"phone,name,plan\n+919876543210,Asha,gold\nnot a number,Bad,\n+919876543210,Dup,\n09876543211,Vikram,silver\n"


@pytest.fixture
def default_policy(acme):
    """For the calling rules' own tests: acme with the policy window a new workspace gets (09:00–21:00)."""
    window = ("calling_start", "calling_end")
    for name in window:
        setattr(acme, name, Workspace._meta.get_field(name).get_default())
    acme.save(update_fields=window)
    return acme


@pytest.fixture
def sent(monkeypatch):
    """Task ids that would go to the broker (the broker itself is exercised end to end)."""
    from campaigns import dialer

    batches = []
    monkeypatch.setattr(dialer, "send_place_calls", batches.append)
    return batches


@pytest.fixture
def private_media(settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}


@pytest.fixture
def committed(monkeypatch, django_capture_on_commit_callbacks):
    """Runs a request; the tasks it enqueued then run in this process, as its transaction has committed."""
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)

    def committed(send, *args, follow=False, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            response = send(*args, **kwargs)
        return send.__self__.get(response.url) if follow and response.status_code == 302 else response

    return committed


@pytest.fixture
def upload(committed):
    def upload(client, campaign, data=UPLOAD_CSV, follow=False, **headers):
        file = SimpleUploadedFile("contacts.csv", data, content_type="text/csv")
        return committed(client.post, reverse("campaigns:upload", args=[campaign.pk]),
                         {"region": "IN", "file": file}, follow=follow, **headers)

    return upload


@pytest.fixture
def confirm(committed):
    def confirm(client, received):
        url = reverse("campaigns:import", args=[received.campaign_id, received.pk])
        return committed(client.post, url, follow=True)

    return confirm

SIMULATOR_ACCOUNT = "acme1:key-123456789:token-987654321"  # acme's account in tests.conftest


@pytest.fixture(scope="module")
def simulator(request, tmp_path_factory):
    config = tmp_path_factory.mktemp("sim") / "config.json"
    config.write_text(json.dumps(getattr(request.module, "SIMULATOR_CONFIG", {})))
    service = processes.start_simulator(tmp_path_factory.mktemp("simlog"), SIMULATOR_ACCOUNT, config=config)
    yield service
    service.stop()


@pytest.fixture
def sim(simulator):
    """The module's simulator with no faults left over from an earlier test."""
    httpx.put(f"{simulator.url}/_sim/faults", json=[]).raise_for_status()
    return simulator
