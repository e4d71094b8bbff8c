"""Celery tasks of the webhooks: thin, idempotent in the Delivery row (integrations/delivery.py)."""

from celery import shared_task

from integrations import delivery


@shared_task(soft_time_limit=30, time_limit=40)
def deliver_webhook(delivery_id: int) -> None:
    """Sent when an event commits, again after each failure (with its backoff), and by the sweep."""
    attempted = delivery.deliver(delivery_id)
    if attempted is not None and attempted.state == attempted.State.PENDING:
        deliver_webhook.apply_async((delivery_id,), eta=attempted.next_attempt_at)


@shared_task
def sweep_webhooks() -> None:
    """Beat: send again the deliveries whose task was lost."""
    for delivery_id in delivery.sweep():
        deliver_webhook.delay(delivery_id)
