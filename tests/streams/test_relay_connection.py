"""The relay bot's settings as form fields, and "Test the connection": a WebSocket opened from the
server to real servers on loopback, each failure told by its cause (refused, timeout, TLS, handshake)."""

import datetime
import ipaddress
import json
import socket
import ssl
import threading
from http import HTTPStatus

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.files.base import ContentFile
from django.db.models import TextField
from django.db.models.functions import Cast
from django.urls import reverse
from websockets.sync.server import serve

from campaigns.forms import CampaignForm
from campaigns.models import Campaign
from streams import prompts
from streams.bots import relay
from tests.campaigns.test_campaign_views import form_data
from tests.streams.exotel_side import wav

pytestmark = pytest.mark.django_db


class Bot:
    """A WebSocket server on loopback in a thread; remembers the path of each handshake it received, which
    `refuse` (connection, request) may answer instead of accepting."""

    def __init__(self, *, refuse=None, tls: ssl.SSLContext | None = None) -> None:
        self.paths: list[str] = []

        def process_request(connection, request):
            self.paths.append(request.path)  # before the answer goes out: no race with the client's return
            return refuse(connection, request) if refuse else None

        self.server = serve(self.handle, "127.0.0.1", 0, process_request=process_request, ssl=tls)
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def handle(self, ws) -> None:
        for _ in ws:  # until the client closes
            pass

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture
def bot():
    bot = Bot()
    yield bot
    bot.stop()


def self_signed_context(folder) -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1 that no client trusts."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


def test_a_websocket_server_that_accepts_is_a_success(bot):
    ok, message = relay.test_connection(f"ws://127.0.0.1:{bot.port}/agent?token=abc")
    assert ok and message == f"Connected: 127.0.0.1:{bot.port} accepted the WebSocket handshake."
    assert bot.paths == ["/agent?token=abc"]


def test_nothing_listening_is_a_refusal(bot):
    bot.stop()  # the port was ours a moment ago: now nothing accepts there
    assert relay.test_connection(f"ws://127.0.0.1:{bot.port}/") == (
        False, f"Connection refused: nothing accepts connections at 127.0.0.1:{bot.port}.")


def test_a_server_that_never_answers_is_a_timeout(monkeypatch):
    monkeypatch.setattr(relay, "CONNECT_TIMEOUT", 0.5)
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts TCP (the backlog), never says a word
        port = silent.getsockname()[1]
        assert relay.test_connection(f"ws://127.0.0.1:{port}/") == (
            False, f"Timed out: 127.0.0.1:{port} did not complete the handshake within 0.5 s.")


def test_an_untrusted_certificate_is_a_tls_failure(tmp_path):
    bot = Bot(tls=self_signed_context(tmp_path))
    try:
        ok, message = relay.test_connection(f"wss://127.0.0.1:{bot.port}/")
    finally:
        bot.stop()
    assert not ok and message.startswith(f"TLS failed: the certificate of 127.0.0.1:{bot.port} is not trusted (")
    assert "signed certificate" in message and bot.paths == []


def test_wss_to_a_server_without_tls_is_a_tls_failure(bot):
    ok, message = relay.test_connection(f"wss://127.0.0.1:{bot.port}/")
    assert not ok and message.startswith(f"TLS failed with 127.0.0.1:{bot.port}: ")


def test_a_refused_upgrade_is_a_bad_handshake():
    bot = Bot(refuse=lambda connection, request: connection.respond(HTTPStatus.FORBIDDEN, "no\n"))
    try:
        assert relay.test_connection(f"ws://127.0.0.1:{bot.port}/") == (
            False, f"Bad handshake: 127.0.0.1:{bot.port} answered HTTP 403 instead of accepting the WebSocket.")
    finally:
        bot.stop()


def test_a_server_that_does_not_speak_http_is_a_bad_handshake():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        def babble():
            connection, _ = server.accept()
            with connection:
                connection.recv(4096)
                connection.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")

        thread = threading.Thread(target=babble, daemon=True)
        thread.start()
        ok, message = relay.test_connection(f"ws://127.0.0.1:{port}/")
        thread.join(5)
    assert not ok and message.startswith(f"Bad handshake: 127.0.0.1:{port} is not a WebSocket server (")


@pytest.mark.parametrize("url", ["https://bot.example.com/agent", "bot.example.com", ""])
def test_only_websocket_addresses_are_tried(url):
    assert relay.test_connection(url) == (
        False, "Refused by the outbound rules: Only wss:// and ws:// addresses are allowed.")


def test_the_outbound_rules_keep_loopback_out_in_production(settings, bot):
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    ok, message = relay.test_connection(f"ws://127.0.0.1:{bot.port}/")
    assert not ok and message.startswith("Refused by the outbound rules: 127.0.0.1 is a private")
    assert bot.paths == []  # never reached


def test_the_button_asks_the_server(alice_client, bot):
    response = alice_client.post(reverse("campaigns:relay_test"), {"url": f" ws://127.0.0.1:{bot.port}/agent "})
    assert json.loads(response.content) == {
        "ok": True, "message": f"Connected: 127.0.0.1:{bot.port} accepted the WebSocket handshake."}
    assert bot.paths == ["/agent"]


def test_only_operators_test_and_only_by_post(alice_client, bob_client, bot):
    url = f"ws://127.0.0.1:{bot.port}/"
    assert bob_client.post(reverse("campaigns:relay_test"), {"url": url}).status_code == 403
    assert alice_client.get(reverse("campaigns:relay_test"), {"url": url}).status_code == 405
    assert bot.paths == []


def relay_form(campaign, **fields):
    return form_data(campaign, bot_kind="relay", bot_settings="", **fields)


def test_the_relay_is_set_with_fields(alice_client, acme, campaign):
    prompts.save_prompt(acme, "sorry", ContentFile(wav(100, 8000), name="sorry.wav"))
    data = relay_form(campaign, relay_url=" wss://bot.example.com/agent?token=abc ", relay_fallback_prompt="sorry")
    assert alice_client.post(reverse("campaigns:create"), data).status_code == 302
    created = Campaign.objects.get(name="Spring renewals")
    assert created.bot_settings == {"url": "wss://bot.example.com/agent?token=abc", "fallback_prompt": "sorry"}
    form = alice_client.get(reverse("campaigns:edit", args=[created.pk])).context["form"]
    assert form["relay_url"].value() == "wss://bot.example.com/agent?token=abc"
    assert form["relay_fallback_prompt"].value() == "sorry"


def test_relay_fields_are_checked_at_the_field(alice_client, campaign):
    errors = alice_client.post(reverse("campaigns:create"), relay_form(
        campaign, relay_url="http://bot.example.com")).context["form"].errors
    assert "The relay url must be a ws:// or wss:// address" in str(errors["relay_url"])
    assert "bot_settings" not in errors and not Campaign.objects.filter(name="Spring renewals").exists()


def test_the_fallback_is_one_of_the_workspaces_prompts(alice_client, acme, globex, campaign):
    prompts.save_prompt(globex, "globex-only", ContentFile(wav(100, 8000), name="g.wav"))
    errors = alice_client.post(reverse("campaigns:create"), relay_form(
        campaign, relay_url="wss://bot.example.com/agent", relay_fallback_prompt="globex-only")).context["form"].errors
    assert "Select a valid choice" in str(errors["relay_fallback_prompt"])


def test_the_api_still_sets_a_relay_with_bot_settings(campaign):
    data = {**form_data(campaign, bot_kind="relay"), "bot_settings": {"url": "wss://bot.example.com/agent"}}
    blank = Campaign(workspace=campaign.workspace, time_zone="Asia/Kolkata")
    form = CampaignForm(data, instance=blank, workspace=campaign.workspace)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["bot_settings"] == {"url": "wss://bot.example.com/agent"}


def wants_token(token: str):
    """A bot's handshake check: 401 unless its bearer token comes."""
    def check(connection, request):
        if request.headers.get("Authorization") != f"Bearer {token}":
            return connection.respond(HTTPStatus.UNAUTHORIZED, "token please\n")
        return None

    return check


@pytest.fixture
def guarded_bot():
    bot = Bot(refuse=wants_token("s3cret-relay"))
    yield bot
    bot.stop()


def test_the_token_goes_in_the_handshake(guarded_bot):
    url = f"ws://127.0.0.1:{guarded_bot.port}/"
    assert relay.test_connection(url)[1].endswith("answered HTTP 401 instead of accepting the WebSocket.")
    assert relay.test_connection(url, "s3cret-relay")[0]
    assert relay.test_connection(url, "s3cret relay\r\nX-Injected: 1") == (False, relay.TOKEN_REFUSED)


def test_the_token_is_stored_encrypted_and_never_shown_back(alice_client, campaign):
    data = relay_form(campaign, relay_url="wss://bot.example.com/agent", relay_token="s3cret-relay")
    alice_client.post(reverse("campaigns:edit", args=[campaign.pk]), data)
    campaign.refresh_from_db()
    assert campaign.relay_token == "s3cret-relay"
    stored = Campaign.objects.filter(pk=campaign.pk).values_list(Cast("relay_token", TextField()), flat=True).get()
    assert stored.startswith("gAAAA") and "s3cret" not in stored  # a Fernet token in the row
    page = alice_client.get(reverse("campaigns:edit", args=[campaign.pk])).content.decode()
    assert "s3cret-relay" not in page and "Stored: …elay. Leave blank to keep it." in page
    alice_client.post(reverse("campaigns:edit", args=[campaign.pk]), {**data, "relay_token": ""})
    campaign.refresh_from_db()
    assert campaign.relay_token == "s3cret-relay"  # blank keeps it
    alice_client.post(reverse("campaigns:edit", args=[campaign.pk]), {**data, "relay_token": "",
                                                                       "forget_relay_token": "on"})
    campaign.refresh_from_db()
    assert campaign.relay_token == ""


def test_a_bot_that_is_not_a_relay_keeps_no_token(alice_client, campaign):
    campaign.relay_token = "s3cret-relay"
    campaign.save()
    alice_client.post(reverse("campaigns:edit", args=[campaign.pk]), form_data(campaign))  # echo
    campaign.refresh_from_db()
    assert campaign.relay_token == ""


def test_a_token_that_cannot_travel_in_a_header_is_refused(alice_client, campaign):
    errors = alice_client.post(reverse("campaigns:create"), relay_form(
        campaign, relay_url="wss://bot.example.com/agent", relay_token="two words")).context["form"].errors
    assert relay.TOKEN_REFUSED in str(errors["relay_token"])


def test_the_button_uses_the_stored_token_of_the_workspaces_own_campaign(alice_client, charlie_client, campaign,
                                                                         guarded_bot):
    campaign.relay_token = "s3cret-relay"
    campaign.save()
    data = {"url": f"ws://127.0.0.1:{guarded_bot.port}/", "campaign": campaign.pk}
    assert json.loads(alice_client.post(reverse("campaigns:relay_test"), data).content)["ok"]
    # charlie naming acme's campaign gets no token of it: the bot refuses him
    answer = json.loads(charlie_client.post(reverse("campaigns:relay_test"), data).content)
    assert not answer["ok"] and "HTTP 401" in answer["message"]
