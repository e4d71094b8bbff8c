"""The durable outbox: an event for the CRM is written in the same transaction as the change it tells of.

The engine calls `call_ended` when a call reaches its final state (campaigns.calls.advance) and
`campaign_ended` when a campaign completes or is cancelled (campaigns.lifecycle), inside their
transactions: the change and its event commit together or not at all. Each event gets one Delivery
per active endpoint that asked for its kind; their tasks are sent once the transaction commits, and
beat sends again any whose message was lost (integrations.delivery.sweep).

A call's transcript and its bot's disposition are saved when its stream closes, which may come
after the final status: a call.ended written while a stream of the call is open is held (its
deliveries due later) until the stream closes (`stream_closed`, which fills the event in and sends
it), or CALL_ENDED_WAIT_SECONDS at most, when it goes as it is. Both sides hold the call's row lock,
so whichever commits second sees the other.
"""

import datetime
import uuid

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from campaigns.models import Call
from integrations import schemas
from integrations.models import Delivery, OutboxEvent, WebhookEndpoint
from streams.models import StreamSession

Event = WebhookEndpoint.Event


def record(workspace_id: int, kind: Event, data: dict, *, call: Call | None = None,
           held_until: datetime.datetime | None = None) -> OutboxEvent | None:
    """Write `kind` with `data` for every endpoint of the workspace that wants it; None if none does.
    `held_until`: not sent before then unless released earlier (`stream_closed`)."""
    # A workspace has a few endpoints: their kinds are filtered here (SQLite has no JSON containment).
    endpoints = [pk for pk, kinds in WebhookEndpoint.objects.filter(workspace_id=workspace_id, active=True)
                 .values_list("pk", "events") if kind in kinds]
    if not endpoints:
        return None
    now = timezone.now()
    event_id = uuid.uuid4()
    payload = {"id": str(event_id), "type": kind, "created_at": now.isoformat(), "data": data}
    event = OutboxEvent.objects.create(uuid=event_id, workspace_id=workspace_id, kind=kind, payload=payload,
                                       created_at=now, call=call, held_until=held_until)
    deliveries = Delivery.objects.bulk_create([
        Delivery(workspace_id=workspace_id, endpoint_id=pk, event=event, next_attempt_at=held_until or now,
                 created_at=now)
        for pk in endpoints
    ])
    # A held event's tasks are due when its hold ends: that is the fallback if its stream never closes.
    _send_on_commit([delivery.pk for delivery in deliveries], eta=held_until)
    return event


def _send_on_commit(delivery_ids: list[int], *, eta: datetime.datetime | None = None) -> None:
    from integrations import tasks  # the tasks module imports the delivery code, which imports this one

    transaction.on_commit(lambda: [tasks.deliver_webhook.apply_async((pk,), eta=eta) for pk in delivery_ids])


def _call_ended_data(call: Call) -> dict:
    contact = call.contact
    return {
        "call": schemas.CallOut.from_orm(call).model_dump(mode="json"),
        "contact": {"id": contact.pk, "phone": contact.phone, "name": contact.name, "variables": contact.variables,
                    "state": contact.state, "outcome": contact.outcome},
    }


def _streaming(call_id: int) -> bool:
    return StreamSession.objects.filter(call_id=call_id, ended_at__isnull=True).exists()


def call_ended(call: Call) -> OutboxEvent | None:
    """In the transaction that made `call` final, its row locked: held while a stream of it is open."""
    held_until = None
    if _streaming(call.pk):
        held_until = timezone.now() + datetime.timedelta(seconds=settings.CALL_ENDED_WAIT_SECONDS)
    return record(call.workspace_id, Event.CALL_ENDED, _call_ended_data(call), call=call, held_until=held_until)


def stream_closed(call_id: int) -> None:
    """In the transaction that records a stream of the call closing, the call's row locked: a call.ended
    held for it is filled in from the call as it is now (transcript, disposition) and sent, once no
    stream of the call is open. A hold that has run out is left to its tasks: it may be on its way."""
    now = timezone.now()
    held = list(OutboxEvent.objects.filter(call_id=call_id, held_until__gt=now))
    if not held or _streaming(call_id):
        return
    data = _call_ended_data(Call.objects.select_related("contact").get(pk=call_id))
    for event in held:
        event.payload, event.held_until = {**event.payload, "data": data}, None
        event.save(update_fields=["payload", "held_until"])
        due = list(event.deliveries.filter(state=Delivery.State.PENDING, attempts=0).values_list("pk", flat=True))
        Delivery.objects.filter(pk__in=due).update(next_attempt_at=now)
        _send_on_commit(due)


def campaign_ended(campaign) -> OutboxEvent | None:
    """In the transaction that completed or cancelled `campaign`."""
    return record(campaign.workspace_id, Event.CAMPAIGN_ENDED, {
        "campaign": schemas.CampaignOut.from_orm(campaign).model_dump(mode="json"),
    })
