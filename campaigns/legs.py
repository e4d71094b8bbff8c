"""Legs mode after the answer: stream and greeting started together, greeting stopped when the bot is on.

Dead air (`Call.dead_air_ms`) is the silence the caller hears after picking up: from `answered_at`
(when this app received `leg_answered`, on our clock) to the first audio, which is the greeting
once Exotel accepted `start_say` (its 202), or, with no greeting or a refused one, the stream's
start as reported by the stream server (`stream_started`). Both measure on one clock, ours; the
smaller value wins, so the order in which the two arrive does not matter.
"""

import logging
from concurrent.futures import ThreadPoolExecutor

import httpx
from django.db.models import Q
from django.utils import timezone

from campaigns import accounts, calls, dialer, machines
from campaigns.models import Call, Campaign
from exotel.errors import ExotelError, OutcomeUnknownError, RejectedError

log = logging.getLogger(__name__)
# Exotel acks an action at once (202); a slower answer must not hold the applier's next deliveries long.
ACTION_TIMEOUT = httpx.Timeout(0.8, connect=0.5)


def answer_leg(call_id: int) -> None:
    """On `leg_answered`: `start_stream` and `start_say` (the greeting) sent at the same moment.

    Called by the applier right after the answer commits, not through the queue: every millisecond
    here is silence on the line.
    """
    call = Call.objects.select_related("campaign__account", "variant").get(pk=call_id)
    if not call.leg_sid or call.state != Call.State.IN_PROGRESS:
        return
    campaign = call.campaign
    if call.answered_by == machines.MACHINE and campaign.on_machine == Campaign.OnMachine.HANG_UP:
        hang_up_machine(call.pk)  # Exotel held the answer until its verdict: no stream, no greeting
        return
    with accounts.client_for(campaign.account, timeout=ACTION_TIMEOUT) as client, ThreadPoolExecutor(2) as pool:
        stream = pool.submit(client.start_stream, call.leg_sid, url=dialer.bot_stream_url(call),
                             sample_rate=campaign.sample_rate)
        greeting = call.bot.greeting_text  # the A/B variant's, if the call has one
        say = pool.submit(_say, client, call.leg_sid, greeting) if greeting else None
        stream_error, say_error = stream.exception(), say and say.exception()
        if say and not say_error:
            store_dead_air(call, say.result())
        if say_error:
            log.warning("call %s: greeting refused: %s", call.pk, say_error)
        if stream_error:
            stream_not_started(client, call, stream_error)


def hang_up_machine(call_id: int) -> None:
    """Exotel says a machine answered and the campaign hangs up on machines: the disposition first
    (the leg's end settles the contact by it: a no-answer to the retry policy), then the hang-up."""
    call = Call.objects.select_related("campaign__account").get(pk=call_id)
    if call.campaign.on_machine != Campaign.OnMachine.HANG_UP or call.state != Call.State.IN_PROGRESS:
        return  # a message to leave is the stream server's (streams.machine); an ended call needs nothing
    calls.set_disposition(call.pk, machines.MACHINE_HUNG_UP)
    with accounts.client_for(call.campaign.account, timeout=ACTION_TIMEOUT) as client:
        _quietly(client.hangup_leg, call.leg_sid)


def stream_not_started(client, call: Call, error: Exception) -> None:
    """start_stream failed: end a call that would hear the greeting for ever, unless it ended already.

    An answer that never came (a timeout) may hide a stream that did start: the call is left to its
    leg events. A refusal of a leg that has ended (the callee hung up first) is no failure of ours:
    `leg_terminated` settles the call as answered. Only a leg we had to hang up fails the call.
    """
    log.warning("call %s: start_stream failed: %s", call.pk, error)
    if isinstance(error, OutcomeUnknownError):
        return
    try:
        client.hangup_leg(call.leg_sid)
    except RejectedError as refused:
        log.warning("call %s: the leg had ended already: %s", call.pk, refused)
        return
    except ExotelError as hangup_error:
        log.warning("call %s: hangup_leg failed: %s", call.pk, hangup_error)
    calls.advance(call, Call.State.FAILED, if_still=Call.State.IN_PROGRESS, error=f"start_stream refused: {error}")


def _say(client, leg_sid: str, text: str):
    """Start the greeting; returns when Exotel accepted it, which is when the caller starts hearing it."""
    client.start_say(leg_sid, text)
    return timezone.now()


def stream_started(call_id: int) -> None:
    """The stream server saw the stream start: the call is answered; in Legs mode the greeting stops."""
    now = timezone.now()
    call = Call.objects.select_related("campaign__account", "variant").get(pk=call_id)
    calls.advance(call, Call.State.IN_PROGRESS, at=now)  # no-op when a callback got there first
    if call.campaign.connect_mode != Campaign.ConnectMode.LEGS or not call.leg_sid:
        return
    store_dead_air(call, now)
    # Whoever sets greeting_ended_at first (say_completed or us) owns it: stop_say goes once at most.
    still_playing = Call.objects.filter(pk=call.pk, greeting_ended_at__isnull=True).update(greeting_ended_at=now)
    if still_playing and call.bot.greeting_text:
        with accounts.client_for(call.campaign.account, timeout=ACTION_TIMEOUT) as client:
            _quietly(client.stop_say, call.leg_sid)


def store_dead_air(call: Call, first_audio_at) -> None:
    # Read afresh: the answer may have been stamped since `call` was read; once stamped it never moves.
    answered_at = Call.objects.filter(pk=call.pk).values_list("answered_at", flat=True).get()
    if answered_at is None:
        return
    dead_air = max(0, round((first_audio_at - answered_at).total_seconds() * 1000))
    Call.objects.filter(Q(dead_air_ms__isnull=True) | Q(dead_air_ms__gt=dead_air), pk=call.pk).update(
        dead_air_ms=dead_air
    )


def _quietly(action, leg_sid: str) -> None:
    """A follow-up action whose failure changes nothing we could act on: log it and go on."""
    try:
        action(leg_sid)
    except ExotelError as error:
        log.warning("leg %s: %s failed: %s", leg_sid, action.__name__, error)
