"""The contact upload's pages: private storage, and requests whose Celery tasks run in the test."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from config.celery import app as celery_app

UPLOAD_CSV = b"phone,name,plan\n+919876543210,Asha,gold\nnot a number,Bad,\n+919876543210,Dup,\n09876543211,Vikram,silver\n"


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
