"""The dispatcher: which calls start now, claimed in bulk and sent to `place_call` in batches.

Each beat tick walks the running campaigns. For a campaign inside its window it locks the campaign
row (`SKIP LOCKED`: a second dispatcher passes over a campaign the first is planning), refills the
pacing bucket, takes the least of pacing, free concurrency and the account's free streams, and
claims that many due contacts with `FOR UPDATE SKIP LOCKED`, each with its number's ledger row
(campaigns.models.Recipient), locked in the same query: two campaigns dialling one number at once
take turns. The do-not-call gate comes first: a workspace whose list cannot be read
(campaigns.donotcall) gets nothing planned, and its campaigns say why. Contacts on the list at that
moment are skipped; contacts no number of the campaign's caller-ID pool may call (campaigns.pools:
their country) too; the calling rules (campaigns.compliance: the recipient's window, attempt caps
across campaigns) dial, hold or skip the rest, recording each hold and skip. Those dialled get a
Call row each (queued, with its token, the rule that allowed it, its caller ID and its A/B variant) and their tasks
are sent after commit; `place_call` checks the list once more before it dials. A tick costs a bounded number of
queries per campaign whatever the number of contacts: the claims walk the `contact_due` index.
"""

import datetime
import logging

import httpx
from celery import current_app
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from campaigns import (
    accounts,
    breaker,
    calls,
    compliance,
    donotcall,
    experiments,
    lifecycle,
    links,
    pools,
    rollups,
    schedule,
    tasks,
)
from campaigns.models import Call, Campaign, Contact, Hold
from exotel import wire
from exotel.errors import (
    AuthenticationError,
    ExotelError,
    OutcomeUnknownError,
    RateLimitedError,
    RejectedError,
    TransientError,
    ValidationError,
)
from streams import heartbeat

log = logging.getLogger(__name__)


def dispatch(*, now=None) -> int:
    """One tick over every running campaign; returns the number of calls queued.

    No network call happens here: capacity readings come from the rows (campaigns/accounts.py),
    so one tenant's slow Exotel URL cannot hold up the tick for everyone.
    """
    now = now or timezone.now()
    lifecycle.begin_due_campaigns(now=now)
    # Every connect mode streams the answered call to us: with no stream server up, it would be silence.
    if not heartbeat.healthy(now=now):
        log.warning("dialling held: no stream server has published its heartbeat")
        return 0
    breaker.review(now=now)
    campaigns = Campaign.objects.filter(state=Campaign.State.RUNNING).select_related("account").order_by("pk")
    headroom: dict[int, int | None] = {}
    queued = 0
    for campaign in campaigns:
        if campaign.backoff_until and campaign.backoff_until > now:
            continue
        if not schedule.is_open(schedule.Window.of(campaign), now):
            continue
        if stale := donotcall.scrub_problem(campaign, now=now):  # the registry's file has aged past its limit
            lifecycle.pause_for_error(campaign, stale)
            continue
        if campaign.account_id not in headroom:
            headroom[campaign.account_id] = accounts.stream_headroom(campaign.account)
        try:
            call_ids = plan_campaign(campaign.pk, now=now, streams_left=headroom[campaign.account_id])
        except donotcall.GateClosed as closed:
            log.warning("campaign %s: %s", campaign.pk, closed)
            if campaign.last_error != str(closed):
                lifecycle.record_error(campaign, str(closed))
            continue
        if campaign.last_error.startswith(donotcall.GATE_HELD):  # the gate has opened again
            lifecycle.record_error(campaign, "")
        if headroom[campaign.account_id] is not None:
            headroom[campaign.account_id] -= len(call_ids)
        queued += len(call_ids)
    return queued


def plan_campaign(campaign_id: int, *, now, streams_left: int | None) -> list[int]:
    """Claim due contacts of one campaign and queue a call for each; returns the call ids."""
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update(skip_locked=True, of=("self",)).select_related("workspace")
            .filter(pk=campaign_id, state=Campaign.State.RUNNING)
            .first()
        )
        if campaign is None:
            return []
        donotcall.check_gate(campaign.workspace_id)  # raises: the transaction ends and nothing is claimed
        pace = schedule.refill(schedule.Pace.of(campaign), per_minute=campaign.calls_per_minute, now=now)
        budget = schedule.calls_allowed(
            credit=pace.credit, concurrency_left=campaign.max_concurrent - campaign.calls_live,
            streams_left=streams_left,
        )
        contacts = claim_due_contacts(campaign, budget, now=now) if budget else []
        dialling, skipped = skip_do_not_call(campaign, contacts, now=now)
        choice = pools.choose_caller_ids(campaign, dialling, now=now)
        skipped += compliance.record_holds(choice.not_allowed)
        admitted = compliance.admit(campaign, [c for c in dialling if c.pk in choice.caller_ids], now=now)
        skipped += admitted.skipped
        pools.mark_used(choice, admitted.dial)
        new_calls = queue_calls(campaign, admitted.dial, allowed_by=admitted.allowed_by,
                                caller_ids=choice.caller_ids, variants=experiments.assign(campaign, admitted.dial),
                                now=now)
        pace = schedule.spend(pace, len(new_calls))
        Campaign.objects.filter(pk=campaign.pk).update(
            pace_credit=pace.credit, paced_at=pace.at, pace_factor=pace.factor,
            calls_total=F("calls_total") + len(new_calls), calls_live=F("calls_live") + len(new_calls),
            contacts_done=F("contacts_done") + len(skipped),
        )
        rollups.count_placed(campaign.workspace_id, campaign.pk, len(new_calls), at=now)
        call_ids = [call.pk for call in new_calls]
        if call_ids:
            # Robust: with the broker down the calls wait in their rows, and the reaper sends them.
            transaction.on_commit(lambda: send_place_calls(call_ids), robust=True)
    if choice.paused:
        lifecycle.pause_for_error(campaign, choice.paused)
    # Nothing left to claim, or only blocked numbers: the campaign may be done.
    elif (budget and not contacts) or (skipped and not new_calls):
        lifecycle.complete_if_done(campaign_id)
    return call_ids


def skip_do_not_call(campaign: Campaign, contacts: list[Contact], *, now) -> tuple[list[Contact], list[int]]:
    """Contacts to dial, and ids of those on the workspace's do-not-call list now (closed as such)."""
    blocked = donotcall.blocked_phones(campaign.workspace_id, [c.phone for c in contacts])
    skipped = compliance.record_holds([
        Hold(workspace_id=campaign.workspace_id, campaign_id=campaign.pk, contact_id=c.pk, phone=c.phone,
             reason=Hold.Reason.DO_NOT_CALL, at=now) for c in contacts if c.phone in blocked
    ])
    return [c for c in contacts if c.phone not in blocked], skipped


def withdraw_blocked_call(call_id: int) -> bool:
    """A queued call whose number is now on the list is withdrawn and its contact skipped, as if the
    dispatcher had found it listed; False if the call is not queued or not listed."""
    with transaction.atomic():
        call = (Call.objects.select_for_update().filter(pk=call_id, state=Call.State.QUEUED)
                .filter(donotcall.on_the_list()).first())
        if call is None:
            return False
        call.delete()
        rollups.uncount_placed(call.campaign_id, [call.created_at])
        skipped = Contact.objects.filter(pk=call.contact_id, state=Contact.State.CALLING).update(
            state=Contact.State.SKIPPED, outcome="do-not-call", attempts=F("attempts") - 1
        )
        compliance.give_back([(call.contact.recipient_id, call.created_at)])  # never dialled
        if skipped:
            Hold.objects.create(workspace_id=call.workspace_id, campaign_id=call.campaign_id, contact_id=call.contact_id,
                                phone=call.phone, reason=Hold.Reason.DO_NOT_CALL, at=timezone.now())
        Campaign.objects.filter(pk=call.campaign_id).update(
            calls_total=F("calls_total") - 1, calls_live=F("calls_live") - 1, contacts_done=F("contacts_done") + skipped
        )
    lifecycle.complete_if_done(call.campaign_id)
    return True


def claim_due_contacts(campaign: Campaign, limit: int, *, now) -> list[Contact]:
    """Up to `limit` due contacts and their numbers' ledgers, locked; retries that are due first, then first attempts.

    Two index range scans instead of one `IS NULL OR <= now` filter, which would have to walk past
    every retry scheduled for later before reaching the never-tried contacts. A contact whose number
    another campaign's claim holds right now is passed over (SKIP LOCKED on either row): it is due
    again on the next tick, when that claim's attempt is on the ledger.
    """
    due = (
        Contact.objects.select_for_update(skip_locked=True, of=("self", "recipient")).select_related("recipient")
        .filter(campaign=campaign, state=Contact.State.PENDING)
        .only("pk", "phone", "attempts", "time_zone", "variant", "recipient", "recipient__attempts")
    )
    claimed = list(due.filter(next_attempt_at__lte=now).order_by("next_attempt_at")[:limit])
    if len(claimed) < limit:
        claimed += list(due.filter(next_attempt_at__isnull=True)[: limit - len(claimed)])
    return claimed


def queue_calls(campaign: Campaign, contacts: list[Contact], *, allowed_by: dict[int, str], caller_ids: dict,
                variants: dict[int, int | None], now) -> list[Call]:
    if not contacts:
        return []
    Contact.objects.filter(pk__in=[c.pk for c in contacts]).update(
        state=Contact.State.CALLING, attempts=F("attempts") + 1
    )
    return Call.objects.bulk_create(
        Call(workspace_id=campaign.workspace_id, campaign=campaign, contact=contact, attempt=contact.attempts + 1,
             phone=contact.phone, exophone=caller_ids[contact.pk], created_at=now, enqueued_at=now,
             allowed_by=allowed_by[contact.pk], variant_id=variants[contact.pk])
        for contact in contacts
    )


def send_place_calls(call_ids: list[int]) -> None:
    """Messages of a few calls each, published together; each call is still claimed and placed on its own.

    Celery building a message, then a broker round trip per message, were most of a tick's time
    (bench/RESULTS.md): a message carries several calls, and kombu's producer batch pipelines up to a
    thousand messages in one round trip. A batch that fails may have delivered part of itself; the
    calls it left `queued` are sent again by the reaper, and `place_call`'s claim dials each once.
    """
    if not call_ids:
        return
    # Spread over DIAL_MESSAGES_SPREAD messages at least, so a pool of dial workers dials side by side.
    size = min(settings.DIAL_CALLS_PER_MESSAGE, max(1, len(call_ids) // settings.DIAL_MESSAGES_SPREAD))
    with current_app.producer_or_acquire() as producer, producer.batch():
        for first in range(0, len(call_ids), size):
            batch = call_ids[first:first + size]
            tasks.place_calls.apply_async((batch,), producer=producer, **tasks.place_calls_limits(len(batch)))


def place_calls(call_ids: list[int]) -> None:
    """Place each call of one message in turn; a message delivered again dials only the calls still queued.

    Each call is claimed and committed before its request leaves (`place_call`), so a worker killed
    mid-message leaves the calls it reached `dialing` (never dialled again) and the rest `queued`:
    the redelivered message, or else the reaper, places those. One call's unexpected error is
    logged and does not hold the calls after it.
    """
    for call_id in call_ids:
        try:
            place_call(call_id)
        except SoftTimeLimitExceeded:
            raise
        except Exception:  # the call stays as it was left, for the reaper
            log.exception("call %s: placing failed", call_id)


def reap(*, now=None) -> None:
    """Beat: recover calls whose worker died (see campaigns.calls) and send lost ones again."""
    lost, stuck, expired = calls.reap_stale_calls(now=now)
    send_place_calls(lost)
    if lost or stuck or expired:
        log.warning("reaped calls: %d resent, %d now unknown, %d timed out", len(lost), stuck, expired)


# --- placing one call ---------------------------------------------------------------------------

TRANSIENT_RETRY_SECONDS = 10  # Exotel's 5xx are brief; a longer outage just repeats this
# Connect quickly or not at all (then nothing was sent); Exotel answers a dial within seconds.
EXOTEL_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
STATUS_EVENTS = ("ringing", "answered", "terminal")
FLOW_STATUS_EVENTS = ("answered", "terminal")


def place_call(call_id: int, *, now=None) -> None:
    """Dial one queued call in its campaign's connect mode; a task delivered twice dials once.

    The call row and its token exist before the request leaves, and the claim below commits
    before it: a worker killed after sending leaves the call `dialing`, never `queued`, so nothing
    dials it again; the reaper makes it `unknown` and the callback carrying the token settles it.
    """
    now = now or timezone.now()
    # Claim the call: a task delivered twice dials once.
    # A paused campaign dials nothing new; its queued calls wait for the resume (or are withdrawn).
    # A number put on the list since the call was queued (an opt-out in another campaign's call) is
    # not dialled; the list is read in the claim itself, so an error reading it dials nothing.
    claimed = Call.objects.filter(
        pk=call_id, state=Call.State.QUEUED, campaign__state=Campaign.State.RUNNING
    ).exclude(donotcall.on_the_list()).update(state=Call.State.DIALING, dialed_at=now)
    if claimed != 1:
        withdraw_blocked_call(call_id)
        return
    call = Call.objects.select_related("campaign__account", "exophone", "workspace").get(pk=call_id)
    campaign = call.campaign
    try:
        with accounts.client_for(campaign.account, timeout=EXOTEL_TIMEOUT) as client:
            sid, leg_sid = send_call(client, call)
    except RateLimitedError as error:
        slow_down(campaign, retry_after=error.retry_after, now=now)
        requeue(call, countdown=error.retry_after or schedule.DEFAULT_BACKOFF.total_seconds(), now=now)
    except TransientError as error:
        log.warning("call %s: transient Exotel error, retrying: %s", call.pk, error)
        requeue(call, countdown=TRANSIENT_RETRY_SECONDS, now=now, exotel_status=error.status)
    except ValidationError as error:
        # Our request broke a documented limit (a number Exotel cannot dial): retrying cannot help.
        calls.advance(call, Call.State.FAILED, at=now, retry=False, error=str(error))
    except AuthenticationError as error:
        calls.advance(call, Call.State.FAILED, at=now, error=str(error), exotel_status=error.status)
        lifecycle.pause_for_error(campaign, f"Exotel refused the account's credentials: {error}")
    except RejectedError as error:
        calls.advance(call, Call.State.FAILED, at=now, error=str(error), exotel_status=error.status)
        if error.status == 402:  # plan or balance: every further call would be refused too
            lifecycle.pause_for_error(campaign, f"Exotel refused the call (plan or balance): {error}")
    except (OutcomeUnknownError, ExotelError) as error:
        # Sent, but no readable answer: the call may exist. Its callbacks carry the token.
        calls.advance(call, Call.State.UNKNOWN, at=now, error=str(error))
    else:
        Call.objects.filter(pk=call.pk).update(exotel_sid=sid, leg_sid=leg_sid)


def send_call(client, call: Call) -> tuple[str, str]:
    """The Exotel request for the campaign's connect mode; returns (call sid, leg sid)."""
    campaign, workspace = call.campaign, call.workspace
    caller_id = wire.dialled_number(call.exophone.number, campaign.account.number_form, field_name="CallerId")
    if campaign.connect_mode == Campaign.ConnectMode.LEGS:
        leg = client.create_leg(wire.NewLeg(
            number=call.phone, exophone=caller_id, custom_param=call.token,
            leg_event_endpoint=links.webhook_url(workspace, "leg_event"), time_limit=campaign.time_limit,
            amd=campaign.machine_detection != Campaign.MachineDetection.OFF,
            amd_async=campaign.machine_detection == Campaign.MachineDetection.ASYNC,
        ))
        return "", leg.leg_sid
    common = {
        "number": call.phone, "caller_id": caller_id, "time_limit": campaign.time_limit,
        # The token rides in the callback URL too: `answered` carries no CustomField and may
        # arrive before this worker has saved the call's sid.
        "custom_field": call.token, "status_callback": f"{links.webhook_url(workspace, 'status')}?call={call.token}",
    }
    if campaign.connect_mode == Campaign.ConnectMode.FLOW:
        # The flow's Voicebot applet asks our stream-URL endpoint for this call's URL.
        info = client.connect_to_flow(wire.FlowCall(
            flow_url=campaign.flow_url, status_callback_events=FLOW_STATUS_EVENTS, **common
        ))
    else:
        recording = campaign.recording != Campaign.Recording.OFF
        info = client.connect_to_bot(wire.BotCall(
            stream_url=bot_stream_url(call), record=recording,
            recording_channels=campaign.recording if recording else "",
            status_callback_events=STATUS_EVENTS, **common,
        ))
    return info.sid, ""


def bot_stream_url(call: Call) -> str:
    """This call's stream URL with the campaign's sample rate and parameters the bot sees in `start`."""
    return wire.build_stream_url(
        links.stream_url(call), sample_rate=call.campaign.sample_rate,
        custom_parameters={"campaign": str(call.campaign_id), "attempt": str(call.attempt)},
    )


def requeue(call: Call, *, countdown: float, now, exotel_status: int | None = None) -> None:
    """Exotel certainly never took the request: the same attempt goes again later.

    `exotel_status`, a 5xx, is kept on the call: it counts against its number's health (breaker.py).
    """
    with transaction.atomic():
        if not calls.advance(call, Call.State.QUEUED, at=now):
            return
        # Due later, not lost: the reaper counts its staleness from when it is due.
        Call.objects.filter(pk=call.pk).update(
            enqueued_at=now + datetime.timedelta(seconds=countdown), exotel_status=exotel_status or F("exotel_status"))
        transaction.on_commit(lambda: tasks.place_call.apply_async((call.pk,), countdown=countdown))


def slow_down(campaign: Campaign, *, retry_after: float | None, now) -> None:
    """A 429: hold the campaign's dials until Exotel's Retry-After and halve its rate."""
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        pace = schedule.slowed(schedule.Pace.of(locked))
        Campaign.objects.filter(pk=campaign.pk).update(
            pace_credit=pace.credit, pace_factor=pace.factor, backoff_until=schedule.backoff_until(now, retry_after),
            last_error=f"Exotel is rate limiting calls; slowed to {pace.factor:.0%} of the configured rate.",
        )
