"""The durable outbox: an event for the CRM is written in the same transaction as the change it tells of.

The engine calls `call_ended` when a call reaches its final state (campaigns.calls.advance) and
`campaign_ended` when a campaign completes or is cancelled (campaigns.lifecycle), inside their
transactions: the change and its event commit together or not at all. Each event gets one Delivery
per active endpoint that asked for its kind; their tasks are sent once the transaction commits, and
beat sends again any whose message was lost (integrations.delivery.sweep).
"""

import uuid

from django.db import transaction
from django.utils import timezone

from integrations import schemas
from integrations.models import Delivery, OutboxEvent, WebhookEndpoint

Event = WebhookEndpoint.Event


def record(workspace_id: int, kind: Event, data: dict) -> OutboxEvent | None:
    """Write `kind` with `data` for every endpoint of the workspace that wants it; None if none does."""
    # A workspace has a few endpoints: their kinds are filtered here (SQLite has no JSON containment).
    endpoints = [pk for pk, kinds in WebhookEndpoint.objects.filter(workspace_id=workspace_id, active=True)
                 .values_list("pk", "events") if kind in kinds]
    if not endpoints:
        return None
    from integrations import tasks  # the tasks module imports the delivery code, which imports this one

    now = timezone.now()
    event_id = uuid.uuid4()
    payload = {"id": str(event_id), "type": kind, "created_at": now.isoformat(), "data": data}
    event = OutboxEvent.objects.create(uuid=event_id, workspace_id=workspace_id, kind=kind, payload=payload,
                                       created_at=now)
    deliveries = Delivery.objects.bulk_create([
        Delivery(workspace_id=workspace_id, endpoint_id=pk, event=event, next_attempt_at=now, created_at=now)
        for pk in endpoints
    ])
    ids = [delivery.pk for delivery in deliveries]
    transaction.on_commit(lambda: [tasks.deliver_webhook.delay(pk) for pk in ids])
    return event


def call_ended(call) -> OutboxEvent | None:
    """In the transaction that made `call` final."""
    contact = call.contact
    return record(call.workspace_id, Event.CALL_ENDED, {
        "call": schemas.CallOut.from_orm(call).model_dump(mode="json"),
        "contact": {"id": contact.pk, "phone": contact.phone, "name": contact.name, "variables": contact.variables,
                    "state": contact.state, "outcome": contact.outcome},
    })


def campaign_ended(campaign) -> OutboxEvent | None:
    """In the transaction that completed or cancelled `campaign`."""
    return record(campaign.workspace_id, Event.CAMPAIGN_ENDED, {
        "campaign": schemas.CampaignOut.from_orm(campaign).model_dump(mode="json"),
    })
