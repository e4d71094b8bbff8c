"""A CRM runs a campaign with nothing but the API and an API key, and hears every call end through its
webhook: daphne, the applier, a Celery worker and beat, the simulator, and the CRM's receiver, all real.

The receiver (an HTTP server on loopback in this process) checks each request's signature and fails
every event's first two deliveries with a 500; it must then accept every call's end exactly once.
"""

import hashlib
import hmac
import json
import threading
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from integrations import delivery, keys
from integrations.models import ApiKey, WebhookEndpoint
from tests import processes
from tests.conftest import make_account
from tests.e2e.test_campaign_run import ACCOUNT, engine, simulator_config  # noqa: F401 (engine: a fixture)

pytestmark = pytest.mark.e2e
FAILURES_FIRST = 2


class Receiver(ThreadingHTTPServer):
    """The CRM: verifies signatures, fails each event's first deliveries, keeps the ids it applied."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), ReceiverHandler)
        self.secret = ""
        self.lock = threading.Lock()
        self.tries: Counter = Counter()
        self.applied: dict[str, dict] = {}
        self.accepted = Counter()  # 2xx answers per id: exactly one each
        self.bad_signatures = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/crm/hooks"


class ReceiverHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        server: Receiver = self.server
        body = self.rfile.read(int(self.headers["Content-Length"]))
        event_id, timestamp = self.headers["Webhook-Id"], self.headers["Webhook-Timestamp"]
        expected = "v1=" + hmac.new(server.secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        with server.lock:
            if not hmac.compare_digest(expected, self.headers["Webhook-Signature"]):
                server.bad_signatures += 1
                status = 401
            else:
                server.tries[event_id] += 1
                status = 500 if server.tries[event_id] <= FAILURES_FIRST else 200
                if status == 200:
                    server.accepted[event_id] += 1
                    server.applied.setdefault(event_id, json.loads(body))  # the idempotency id: applied once
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def wait_for(api, path, predicate, what, timeout=60):
    return processes.wait_until(lambda: (r := api.get(path).json()) and predicate(r) and r, timeout=timeout, what=what)


def test_a_crm_runs_a_campaign_through_the_api_and_hears_every_call_end_once(engine, acme, alice, receiver):  # noqa: F811
    plan = [("+919812300001", "answer"), ("+919812300002", "busy"), ("+919812300003", "answer"),
            ("+919812300004", "no-answer"), ("+919812300005", "answer")]
    sim, web = engine(plan, WEBHOOK_RETRY_SECONDS="0.5")
    account = make_account(acme, account_sid=ACCOUNT[0], api_key=ACCOUNT[1], api_token=ACCOUNT[2],
                           api_base_url=sim.url)
    exophone = account.exophones.create(workspace=acme, number="+918047491899")
    endpoint = WebhookEndpoint.objects.create(workspace=acme, url=receiver.url, secret=delivery.new_secret(),
                                              events=WebhookEndpoint.Event.values)
    receiver.secret = endpoint.secret
    _, key = keys.create_key(acme, name="CRM", scopes=[ApiKey.Scope.READ, ApiKey.Scope.WRITE], by=alice)
    api = httpx.Client(base_url=f"{web.url}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30)

    made = api.post("/campaigns", json={
        "name": "CRM renewals", "account": account.pk, "exophones": [exophone.pk], "max_attempts": 2,
        "retry_after_minutes": 0, "calls_per_minute": 600, "max_concurrent": 4,
        "window_start": "00:00", "window_end": "23:59:59", "weekdays": [1, 2, 3, 4, 5, 6, 7]})
    assert made.status_code == 201, made.text
    campaign = f"/campaigns/{made.json()['id']}"
    csv = "phone,name\n" + "".join(f"{number},Contact {i}\n" for i, (number, _) in enumerate(plan)) + "12,Short\n"
    upload = api.post(f"{campaign}/uploads", files={"file": ("contacts.csv", csv.encode(), "text/csv")},
                      data={"region": "IN"})
    assert upload.status_code == 202, upload.text
    upload = f"{campaign}/uploads/{upload.json()['id']}"
    checked = wait_for(api, upload, lambda u: u["state"] == "ready", "the upload's check")
    assert [e["line"] for e in checked["report"]["errors"]] == [7]
    assert api.post(f"{upload}/confirm").status_code == 202
    wait_for(api, upload, lambda u: u["state"] == "imported", "the import")
    assert api.post(f"{campaign}/start").json()["state"] == "running"

    wait_for(api, campaign, lambda c: c["state"] == "completed", "the campaign to complete", timeout=120)
    calls = api.get("/calls", params={"campaign": made.json()["id"]}).json()["items"]
    assert len(calls) == 7  # busy and no-answer were tried twice

    def heard_every_end():
        kinds = Counter(event["type"] for event in receiver.applied.values())
        return kinds["call.ended"] == len(calls) and kinds["campaign.ended"] == 1

    processes.wait_until(heard_every_end, timeout=90, what="the CRM to hear every call's end")
    ended = {e["data"]["call"]["id"]: e["data"]["call"] for e in receiver.applied.values() if e["type"] == "call.ended"}
    assert set(ended) == {call["id"] for call in calls}
    assert {call["state"] for call in ended.values()} == {"completed", "busy", "no-answer"}
    assert set(receiver.accepted.values()) == {1}, "an event was accepted twice"
    assert set(receiver.tries.values()) == {FAILURES_FIRST + 1}
    assert receiver.bad_signatures == 0

    def history():
        states = defaultdict(list)
        for row in endpoint.deliveries.values("state", "attempts"):
            states[row["state"]].append(row["attempts"])
        return states

    # The worker records the last answer a moment after the receiver gave it.
    processes.wait_until(lambda: set(history()) == {"delivered"}, timeout=30, what="every delivery recorded")
    assert history() == {"delivered": [FAILURES_FIRST + 1] * (len(calls) + 1)}
