"""Requests to URLs a tenant typed reach only allowed hosts at public addresses (no SSRF), and what
the page says about a failure never carries the answer's body."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse

from campaigns import accounts
from exotel.errors import ValidationError
from tenancy import weburls
from tenancy.models import ExotelAccount
from tests.conftest import make_account
from tests.tenancy.test_account_views import NEW

SECRET = "internal-only-secret-body"


class InternalService(ThreadingHTTPServer):
    """Something on our own network that must never be reached through a tenant's URL."""

    hits = 0

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.server.hits += 1
            self.send_response(500)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(SECRET.encode())

        def log_message(self, *args):
            pass


@pytest.fixture
def internal_service():
    server = InternalService(("127.0.0.1", 0), InternalService.Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def production(settings):
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    return settings


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/", "http://localhost/", "http://[::1]/", "http://2130706433/", "http://0.0.0.0/",
    "http://10.0.0.1/", "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/",
])
def test_private_loopback_and_link_local_addresses_are_refused(production, url):
    with pytest.raises(weburls.Refused):
        weburls.check_outbound(url)


@pytest.mark.parametrize("url", ["http://169.254.169.254/", "http://10.0.0.1/", "http://[fe80::1]/"])
def test_allowing_the_simulator_allows_loopback_only(settings, url):
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    assert weburls.check_outbound("http://127.0.0.1:9/") == ("127.0.0.1", 9)
    with pytest.raises(weburls.Refused):
        weburls.check_outbound(url)


@pytest.mark.parametrize("url", ["ftp://api.in.exotel.com/", "file:///etc/passwd", "gopher://x/", "javascript:1"])
def test_only_web_schemes_are_fetched(url):
    with pytest.raises(weburls.Refused):
        weburls.check_outbound(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379/", "http://10.1.2.3/", "https://attacker.example.com/v1"])
def test_an_api_base_url_must_be_an_exotel_host(production, alice_client, acme, url):
    response = alice_client.post(reverse("tenancy:account_create"), {**NEW, "api_base_url": url})
    assert response.status_code == 200
    assert "not an allowed host" in str(response.context["form"].errors["api_base_url"])
    assert not ExotelAccount.objects.exists()


def test_exotels_own_hosts_are_accepted(production, alice_client, acme):
    response = alice_client.post(reverse("tenancy:account_create"), {**NEW, "api_base_url": "https://api.exotel.com"})
    assert response.status_code == 302


def test_test_connection_never_requests_a_refused_address(production, alice_client, acme, internal_service):
    account = make_account(acme, api_base_url=internal_service.url)  # stored before the rule, or by the admin
    response = alice_client.post(reverse("tenancy:account_test", args=[account.pk]), follow=True)
    page = response.content.decode()
    assert internal_service.hits == 0
    assert "is not an allowed host" in page and SECRET not in page


def test_the_dialer_gets_a_typed_refusal_before_anything_is_sent(production, acme, internal_service):
    account = make_account(acme, api_base_url=internal_service.url)
    with pytest.raises(ValidationError, match="API base URL"):
        accounts.client_for(account)
    assert internal_service.hits == 0


def test_test_connection_never_shows_the_answers_body(alice_client, acme, internal_service):
    account = make_account(acme, api_base_url=internal_service.url)  # loopback allowed, as with the simulator
    response = alice_client.post(reverse("tenancy:account_test", args=[account.pk]), follow=True)
    page = response.content.decode()
    assert internal_service.hits >= 1
    assert "Exotel could not be reached or failed to answer (HTTP 500)" in page and SECRET not in page
