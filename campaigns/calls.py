"""Applying a call's state changes: counters, the retry policy and the contact's outcome.

Every change of a call's state goes through `advance`, which locks the call row, applies the
change only if `Call.TRANSITIONS` allows it (so a repeated or late event, such as an `in-progress`
after `completed`, changes nothing), and in the same transaction moves the campaign's counters
with F() updates, the charts' rollups (campaigns/rollups.py) too, and settles the contact when
the call ends.

Counters: `calls_live` counts calls not yet final (queued through unknown): the dispatcher's
concurrency cap; like busy / no-answer / failed, `calls_answered` counts calls that have ended (those
that a person answered), so answered over ended calls is the answer rate; `talk_seconds` adds the
duration of completed calls a person answered; `calls_machine` counts ended calls that a machine
answered (they are neither answered calls nor talk: a machine that got no message is a no-answer to
the retry policy, campaigns/machines.py).

Stale calls (`reap_stale_calls`, on beat): a call still `queued` long after its task was sent
(`enqueued_at`) lost that task (a worker died holding it, a broker restart dropped it) and is sent
again, once per loss, which is safe because `place_call` claims with a conditional update; a call
stuck in `dialing` with no sid lost its worker between claim and answer, so whether Exotel got the
request is unknown: it becomes `unknown`, never dialled again as the same attempt. An `unknown`
call is resolved by any callback carrying its token; after its time limit plus
CALL_UNKNOWN_GRACE_SECONDS with none, it is failed and the retry policy decides.
"""

import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from campaigns import lifecycle, machines, rollups
from campaigns.models import Call, Campaign, Contact
from integrations import outbox
from transfers import engine as transfers

State = Call.State
OUTCOME_COUNTERS = {State.BUSY: "calls_busy", State.NO_ANSWER: "calls_no_answer", State.FAILED: "calls_failed"}
REAP_BATCH = 1000  # calls per kind per reap; the oldest first, so the rest follow on the next one
SETTABLE = {"exotel_sid", "leg_sid", "duration", "recording_url", "error", "detailed_status", "disposition",
            "disconnected_by", "exotel_status"}


def lock(call: Call) -> Call:
    """The call as it is now, its row locked until the caller's transaction ends."""
    return Call.objects.select_for_update().get(pk=call.pk)


def advance(call: Call, new: State, *, at: datetime.datetime | None = None, retry: bool = True,
            if_still: State | None = None, held: bool = False, **fields) -> bool:
    """Move `call` to `new` if the rules allow; False (nothing changed) if they do not.

    `fields` fill blanks only (a sid, a duration, an error), never overwrite what is known.
    `retry=False` makes a failure final for the contact (a number Exotel can never dial).
    `if_still` applies the change only if the call is still in the state the caller decided from.
    `held`: the caller's transaction holds the call's row lock and `call` is the row as it was
    locked (the webhook applier locks a batch's calls in one query), so it is not read again.
    """
    # No savepoint when a caller's transaction holds us (a webhook's): each one is a round trip.
    with transaction.atomic(savepoint=False):
        locked = call if held else lock(call)
        if new not in Call.TRANSITIONS.get(locked.state, ()) or if_still not in (None, locked.state):
            return False
        changed = locked.transition(new, at=at) + fill_blanks(locked, fields)
        locked.save(update_fields=changed)
        counters = {}
        if new in Call.FINAL_STATES:
            counters.update(_final_counters(locked))
            counters.update(_settle_contact(locked, retry=retry, now=at or timezone.now()))
        if counters:
            Campaign.objects.filter(pk=locked.campaign_id).update(**counters)
        if new in Call.FINAL_STATES:
            rollups.count_ended(locked)
            outbox.call_ended(locked)  # the CRM's event commits with the change, or neither does
        if "disposition" in changed:
            rollups.move_disposition(locked, "", locked.disposition)
        if "contacts_done" in counters:
            lifecycle.complete_if_done(locked.campaign_id)
    for name in changed:
        setattr(call, name, getattr(locked, name))
    return True


def fill(call: Call, *, held: bool = False, **fields) -> bool:
    """Fill blanks on a call without changing its state (Passthru's details, a sid learnt late);
    `held` as for `advance`."""
    if not any(value not in (None, "") for value in fields.values()):
        return False
    with transaction.atomic(savepoint=False):
        locked = call if held else lock(call)
        filled = fill_blanks(locked, fields)
        if filled:
            locked.save(update_fields=filled)
        if "disposition" in filled:
            rollups.move_disposition(locked, "", locked.disposition)
    for name in filled:
        setattr(call, name, getattr(locked, name))
    return bool(filled)


def set_disposition(call_id: int, disposition: str) -> bool:
    """The bot's conclusion, over whatever the call's disposition was (a flow's Passthru may have set one)."""
    with transaction.atomic(savepoint=False):
        locked = Call.objects.select_for_update().get(pk=call_id)
        if locked.disposition == disposition:
            return False
        rollups.move_disposition(locked, locked.disposition, disposition)
        locked.disposition = disposition
        locked.save(update_fields=["disposition"])
    return True


def set_transcript(call_id: int, transcript: list, summary: str) -> None:
    """The relay bot's transcript and summary of the call, stored when its stream ends."""
    Call.objects.filter(pk=call_id).update(transcript=transcript, summary=summary)


def set_first_audio(call_id: int, milliseconds: int) -> None:
    """Time to first audio, from the answer: the call's first stream to send audio sets it."""
    Call.objects.filter(pk=call_id, first_audio_ms__isnull=True).update(first_audio_ms=milliseconds)


def fill_blanks(call: Call, fields: dict) -> list[str]:
    """Set each given field that is still empty on `call`; returns the names set."""
    unknown = set(fields) - SETTABLE
    if unknown:
        raise TypeError(f"not a call field that callbacks may set: {', '.join(sorted(unknown))}")
    filled = []
    for name, value in fields.items():
        # Zero is blank too: Exotel reports ConversationDuration 0 before the call has ended.
        if value not in (None, "", 0) and getattr(call, name) in (None, "", 0):
            setattr(call, name, value)
            filled.append(name)
    return filled


def _final_counters(call: Call) -> dict:
    counters = {"calls_live": F("calls_live") - 1}
    if call.answered_by_a_person:
        counters["calls_answered"] = F("calls_answered") + 1
        if call.state == State.COMPLETED and call.duration:
            counters["talk_seconds"] = F("talk_seconds") + call.duration
    elif call.answered_by == machines.MACHINE:
        counters["calls_machine"] = F("calls_machine") + 1
    if call.state in OUTCOME_COUNTERS:
        counters[OUTCOME_COUNTERS[call.state]] = F(OUTCOME_COUNTERS[call.state]) + 1
    return counters


def _settle_contact(call: Call, *, retry: bool, now: datetime.datetime) -> dict:
    """The contact's next step after its call ended: another attempt later, or a final outcome."""
    # One query for both; only the contact is locked (the campaign row moves by F() updates).
    contact = Contact.objects.select_for_update(of=("self",)).select_related("campaign").get(pk=call.contact_id)
    if contact.state != Contact.State.CALLING or contact.attempts != call.attempt:
        return {}  # not this contact's live attempt (a late event for an old call)
    campaign = contact.campaign
    callback_at = transfers.callback_for(call)
    if callback_at is not None:  # the caller keyed an hour after a transfer nobody took: honoured, whatever the caps
        contact.transition(Contact.State.PENDING)
        contact.next_attempt_at = callback_at
        contact.save(update_fields=["state", "next_attempt_at"])
        return {}
    retrying = (
        retry
        and machines.retry_outcome(call) in campaign.retry_on
        and contact.attempts < campaign.max_attempts
        and campaign.state not in (Campaign.State.CANCELLED, Campaign.State.COMPLETED)
    )
    if retrying:
        contact.transition(Contact.State.PENDING)
        contact.next_attempt_at = now + datetime.timedelta(minutes=campaign.retry_after_minutes)
        contact.save(update_fields=["state", "next_attempt_at"])
        return {}
    contact.transition(Contact.State.DONE)
    contact.outcome = machines.contact_outcome(call)
    contact.save(update_fields=["state", "outcome"])
    return {"contacts_done": F("contacts_done") + 1}


def reap_stale_calls(*, now: datetime.datetime | None = None) -> tuple[list[int], int, int]:
    """Resend lost queued calls, mark stuck dialling calls unknown, time out unknown ones.

    Returns (queued call ids to send again, calls made unknown, unknown calls failed). Each query
    filters and orders in SQL, oldest first, so a batch never hides the calls behind it.
    """
    now = now or timezone.now()
    lost = claim_lost_calls(now=now)
    # Well beyond the client's 15 s answer timeout by default: a live request is never taken for lost.
    dialing_stale = datetime.timedelta(seconds=settings.CALL_DIALING_STALE_SECONDS)
    # The worker stopped between claim and Exotel's answer: the request may or may not have left.
    stuck = Call.objects.filter(
        state=State.DIALING, dialed_at__lt=now - dialing_stale, exotel_sid="", leg_sid=""
    ).update(state=State.UNKNOWN)
    expired = 0
    for call in expired_unknown_calls(now=now)[:REAP_BATCH]:
        expired += advance(call, State.FAILED, at=now, if_still=State.UNKNOWN,
                           error="No callback arrived for a call whose outcome was unknown.")
    return lost, stuck, expired


def claim_lost_calls(*, now: datetime.datetime) -> list[int]:
    """Queued calls whose task is overdue by CALL_QUEUED_STALE_SECONDS: lost with a worker or broker.

    Each is stamped as sent again in the same transaction, so one loss is resent once (by one
    reaper: the rows are locked, SKIP LOCKED), and again only if that message is lost too.
    """
    overdue = now - datetime.timedelta(seconds=settings.CALL_QUEUED_STALE_SECONDS)
    with transaction.atomic():
        lost = list(
            Call.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(state=State.QUEUED, enqueued_at__lt=overdue, campaign__state=Campaign.State.RUNNING)
            .order_by("enqueued_at")
            .values_list("pk", flat=True)[:REAP_BATCH]
        )
        Call.objects.filter(pk__in=lost).update(enqueued_at=now)
    return lost


def expired_unknown_calls(*, now: datetime.datetime):
    """Unknown calls past their campaign's time limit plus CALL_UNKNOWN_GRACE_SECONDS, oldest first.

    One condition per distinct time limit (there are few) keeps the test in SQL on every database.
    """
    grace = datetime.timedelta(seconds=settings.CALL_UNKNOWN_GRACE_SECONDS)
    unknown = Call.objects.filter(state=State.UNKNOWN)
    limits = unknown.values_list("campaign__time_limit", flat=True).order_by().distinct()
    past_limit = Q(pk__in=[])
    for limit in limits:
        past_limit |= Q(campaign__time_limit=limit, dialed_at__lt=now - grace - datetime.timedelta(seconds=limit))
    return unknown.filter(past_limit).order_by("dialed_at")
