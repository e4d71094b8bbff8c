"""The applier as a real process beside daphne: killed between store and apply, it loses nothing."""

import httpx
import pytest

from callbacks.models import WebhookEvent
from campaigns.models import Call
from tests import processes
from tests.callbacks.conftest import dialled

pytestmark = pytest.mark.e2e


def post_status(daphne, workspace, call, status: str) -> int:
    fields = {"CallSid": call.exotel_sid, "Status": status, "CustomField": call.token, "ConversationDuration": "5"}
    return httpx.post(f"{daphne.url}/hooks/{workspace.webhook_token}/status", data=fields, timeout=30).status_code


def state_of(call) -> str:
    return Call.objects.get(pk=call.pk).state


def test_a_killed_applier_loses_nothing_and_its_successor_applies_the_rest(daphne, acme, campaign, tmp_path):
    calls = [dialled(campaign, exotel_sid=f"CA{n}") for n in range(3)]
    applier = processes.start_applier(tmp_path, public_base_url=daphne.url)
    try:
        assert post_status(daphne, acme, calls[0], "ringing") == 200
        processes.wait_until(lambda: state_of(calls[0]) == Call.State.RINGING, timeout=60, what="the ringing applied")
        applier.kill()

        assert [post_status(daphne, acme, call, "completed") for call in calls] == [200] * 3  # acknowledged
        assert WebhookEvent.objects.filter(outcome=WebhookEvent.Outcome.PENDING).count() == 3

        applier = processes.start_applier(tmp_path, public_base_url=daphne.url)
        processes.wait_until(lambda: all(state_of(call) == Call.State.COMPLETED for call in calls), timeout=60,
                             what="the successor to apply what was pending")
        assert post_status(daphne, acme, calls[0], "completed") == 200  # a repeat, while it runs
        processes.wait_until(lambda: not WebhookEvent.objects.filter(outcome="pending").exists(), timeout=60,
                             what="the repeat to be applied")
    finally:
        applier.stop()
    outcomes = list(WebhookEvent.objects.order_by("pk").values_list("outcome", flat=True))
    assert outcomes == ["applied", "applied", "applied", "applied", "duplicate"]
