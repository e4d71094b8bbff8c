"""Answering machines (issue 14): who answered a call, decided once, and what the retry policy makes of it.

Two sources give verdicts: Exotel (a Legs leg's `amd_result_success` event, a Connect status
callback's `AnsweredBy`) and our own ear, the stream server's classifier over the callee's first
seconds (`streams.amd`). Each source's verdict is kept on the call (`amd_verdicts`) with its latency
from the answer on our clock; the first definite one ("human" or "machine") is the call's decision
(`answered_by`, `answered_by_source`, `answered_by_ms`) and is what the bot acts on. A verdict that
comes before the answer reached us (Legs without `async_amd`: Exotel holds the answer until it has
decided) has latency 0: the bot never heard the machine.

The decision is also put in the cache (`decision_key`) for the call's stream server, which looks
for it while it listens (`streams.machine`); with Redis the cache is shared by every process.

A machine that got no message counts as no answer for the retry policy: the contact is dialled again
if the campaign retries no-answers, and ends with the outcome "machine" when it has no attempts
left. A message left ends the contact with "voicemail_left".
"""

import datetime
import logging

from django.core.cache import cache
from django.db import transaction

from campaigns.models import Call, Campaign

log = logging.getLogger(__name__)

HUMAN, MACHINE, UNKNOWN = "human", "machine", "unknown"
VERDICTS = (HUMAN, MACHINE, UNKNOWN)
EXOTEL, AUDIO = "exotel", "audio"
MACHINE_HUNG_UP = "machine"  # dispositions
VOICEMAIL_LEFT = "voicemail_left"
DECISION_TTL = 3600


def decision_key(call_id: int) -> str:
    return f"amd.{call_id}"


def detects(campaign: Campaign) -> bool:
    return campaign.machine_detection != Campaign.MachineDetection.OFF


def normalise(value: str) -> str:
    """Exotel's spelling of a verdict as one of VERDICTS, "" when it says nothing.

    Its value set is not published (field notes: accept liberally): "machine_start", "fax" and the
    like are machines, "person" a human, anything else that is not blank unknown."""
    value = (value or "").strip().lower()
    if not value:
        return ""
    if value.startswith(("machine", "fax", "voicemail")):
        return MACHINE
    if value in (HUMAN, "person"):
        return HUMAN
    return UNKNOWN


def record_verdict(call_id: int, *, source: str, result: str, at: datetime.datetime, reason: str = "") -> str:
    """Keep `source`'s verdict on the call (its first only) and return the call's decision ("" for none yet)."""
    with transaction.atomic(savepoint=False):
        call = Call.objects.select_for_update().get(pk=call_id)
        if source in call.amd_verdicts:
            return call.answered_by
        latency = _latency_ms(call, at)
        call.amd_verdicts = {**call.amd_verdicts, source: {"result": result, "ms": latency, "reason": reason}}
        changed = ["amd_verdicts"]
        if not call.answered_by and result in (HUMAN, MACHINE):
            call.answered_by, call.answered_by_source, call.answered_by_ms = result, source, latency
            changed += ["answered_by", "answered_by_source", "answered_by_ms"]
        call.save(update_fields=changed)
        decision = call.answered_by
    if "answered_by" in changed:
        transaction.on_commit(lambda: _publish(call_id, decision))
    return decision


def _latency_ms(call: Call, at: datetime.datetime) -> int:
    if call.answered_at is None:
        return 0
    return max(0, round((at - call.answered_at).total_seconds() * 1000))


def _publish(call_id: int, decision: str) -> None:
    # The stream server's ear decides alone when the cache is down: the call must not wait on it.
    try:
        cache.set(decision_key(call_id), decision, timeout=DECISION_TTL)
    except Exception as error:
        log.warning("call %s: the decision %r could not be published: %s", call_id, decision, error)


def retry_outcome(call: Call) -> str:
    """What the retry policy and the contact's outcome see of an ended call."""
    if call.answered_by == MACHINE and call.disposition != VOICEMAIL_LEFT:
        return Call.State.NO_ANSWER
    return call.state


def contact_outcome(call: Call) -> str:
    if call.answered_by == MACHINE:
        return VOICEMAIL_LEFT if call.disposition == VOICEMAIL_LEFT else MACHINE_HUNG_UP
    return call.state
