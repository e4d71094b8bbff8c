"""Delivering the outbox to the customer's endpoints: signed, retried with exponential backoff, replayable.

Each request carries
    Webhook-Id: <the event's id>           the same on every attempt and replay: the receiver's idempotency key
    Webhook-Timestamp: <Unix seconds>      when this attempt was signed
    Webhook-Signature: v1=<hex>            HMAC-SHA256 with the endpoint's secret over "<timestamp>.<body>"
A 2xx answer delivers; anything else (an error status, a refused connection, a timeout) is retried
after WEBHOOK_RETRY_SECONDS × 2^(attempts − 1), up to WEBHOOK_MAX_ATTEMPTS, then the delivery is
failed until someone replays it. A delivery is claimed with a conditional UPDATE, so a task sent
twice (beat's sweep and a retry) sends once.
"""

import datetime
import hashlib
import hmac
import ipaddress
import json
import secrets
import time

import httpx
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from integrations.models import Delivery, DeliveryAttempt, WebhookEndpoint
from tenancy import weburls

State = Delivery.State
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
SWEEP_BATCH = 500


def new_secret() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


def check_url(url: str, *, resolve: bool = True) -> tuple[str, int]:
    """The (address, port) to post to, or weburls.Refused: https only, never a private address;
    plain http only to loopback where OUTBOUND_ALLOW_LOOPBACK allows it (a receiver on this machine)."""
    address, port = weburls.check_outbound(url, weburls.WEB, resolve=resolve)
    if url.lower().startswith("http:") and not (settings.OUTBOUND_ALLOW_LOOPBACK and _is_loopback(address)):
        raise weburls.Refused("Only https:// addresses are allowed.")
    return address, port


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def backoff(attempts: int) -> float:
    return settings.WEBHOOK_RETRY_SECONDS * 2 ** (attempts - 1)


def post(endpoint: WebhookEndpoint, payload: dict, *, event_id: str, now: datetime.datetime,
         transport: httpx.BaseTransport | None = None) -> tuple[int | None, str]:
    """Send one signed request; (HTTP status, "") or (None, why it could not be sent)."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    timestamp = str(int(now.timestamp()))
    headers = {"Content-Type": "application/json", "User-Agent": "AgentStream-Webhooks/1",
               "Webhook-Id": event_id, "Webhook-Timestamp": timestamp,
               "Webhook-Signature": signature(endpoint.secret, timestamp, body)}
    try:
        address, port = check_url(endpoint.url)
    except weburls.Refused as exc:
        return None, str(exc)
    # Connect to the address that was checked, not the name again (no DNS rebinding); TLS still checks the name.
    url = httpx.URL(endpoint.url)
    try:
        with httpx.Client(transport=transport, timeout=TIMEOUT, follow_redirects=False, trust_env=False) as client:
            response = client.post(url.copy_with(host=address, port=port), content=body,
                                   headers={**headers, "Host": url.netloc.decode()},
                                   extensions={"sni_hostname": url.host})
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:300]
    return response.status_code, ""


def deliver(delivery_id: int, *, transport: httpx.BaseTransport | None = None) -> Delivery | None:
    """Attempt a due delivery once; None if it is not due (delivered, claimed by another task, later)."""
    now = timezone.now()
    claimed = Delivery.objects.filter(pk=delivery_id, state=State.PENDING,
                                      next_attempt_at__lte=now + datetime.timedelta(seconds=1)
                                      ).update(state=State.SENDING, claimed_at=now)
    if not claimed:
        return None
    delivery = Delivery.objects.select_related("endpoint", "event").get(pk=delivery_id)
    started = time.monotonic()
    status, error = post(delivery.endpoint, delivery.event.payload, event_id=str(delivery.event.uuid), now=now,
                         transport=transport)
    if status is not None and not 200 <= status < 300:
        error = f"HTTP {status}"
    DeliveryAttempt.objects.create(workspace_id=delivery.workspace_id, delivery=delivery, at=now,
                                   status_code=status, error=error,
                                   milliseconds=round((time.monotonic() - started) * 1000))
    delivery.attempts += 1
    if not error:
        delivery.state, delivery.delivered_at = State.DELIVERED, timezone.now()
    elif delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        delivery.state = State.FAILED
    else:
        delivery.state = State.PENDING
        delivery.next_attempt_at = timezone.now() + datetime.timedelta(seconds=backoff(delivery.attempts))
    delivery.save(update_fields=["state", "attempts", "delivered_at", "next_attempt_at"])
    return delivery


def replay(delivery: Delivery) -> bool:
    """Send a delivery again now, with a fresh run of attempts (a failed one, or one the receiver lost)."""
    return bool(Delivery.objects.filter(pk=delivery.pk).exclude(state=State.SENDING).update(
        state=State.PENDING, attempts=0, next_attempt_at=timezone.now()))


def sweep(*, now: datetime.datetime | None = None) -> list[int]:
    """Deliveries whose task was lost: due and pending past the grace, or claimed by a worker that died."""
    now = now or timezone.now()
    grace = datetime.timedelta(seconds=settings.WEBHOOK_SWEEP_GRACE_SECONDS)
    stuck = now - grace - datetime.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    Delivery.objects.filter(state=State.SENDING, claimed_at__lt=stuck).update(state=State.PENDING)
    return list(Delivery.objects.filter(Q(state=State.PENDING, next_attempt_at__lt=now - grace))
                .order_by("next_attempt_at").values_list("pk", flat=True)[:SWEEP_BATCH])
