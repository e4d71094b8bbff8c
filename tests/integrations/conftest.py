import pytest
from django.test import Client

from config.celery import app as celery_app
from integrations import keys
from integrations.models import ApiKey
from tests.campaigns.conftest import private_media  # noqa: F401 (a fixture: the uploads' files)

BOTH = [ApiKey.Scope.READ, ApiKey.Scope.WRITE]


def key_client(workspace, user, scopes=BOTH) -> Client:
    """A client that sends a new API key of `workspace` with every request, as a CRM would."""
    _, plain = keys.create_key(workspace, name="CRM", scopes=scopes, by=user)
    return Client(headers={"Authorization": f"Bearer {plain}"})


@pytest.fixture
def acme_api(acme, alice):
    return key_client(acme, alice)


@pytest.fixture
def globex_api(globex, charlie):
    return key_client(globex, charlie)


@pytest.fixture
def eager(monkeypatch, django_capture_on_commit_callbacks):
    """Tasks enqueued on commit run in this process, as they would in a worker."""
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)

    def eager(send, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return send(*args, **kwargs)

    return eager
