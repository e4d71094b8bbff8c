import re

import httpx
import pytest

from tests import processes
from tests.conftest import PASSWORD

pytestmark = pytest.mark.e2e


def sign_in(base_url: str, email: str, password: str = PASSWORD) -> httpx.Client:
    client = httpx.Client(base_url=base_url, follow_redirects=True, timeout=30)  # a first page, on a loaded machine
    form = client.get("/login/")
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    client.post("/login/", data={"username": email, "password": password, "csrfmiddlewaretoken": csrf})
    return client


def test_daphne_serves_the_test_database(daphne, alice):
    client = sign_in(daphne.url, alice.email)
    page = client.get("/")
    client.close()
    assert page.status_code == 200
    assert "Acme" in page.text


def test_a_worker_starts_against_the_test_broker(transactional_db, tmp_path):
    worker = processes.start_worker(tmp_path, public_base_url="http://127.0.0.1:9")
    try:
        assert worker.process.poll() is None
    finally:
        worker.stop()
