"""place_call against the real simulator in all three connect modes, with injected Exotel faults.

The simulator runs as a subprocess; its JSONL wire log shows exactly what we sent. Faults (429,
500, 401, a lost answer) are the simulator's own, set through its control API.
"""

import json

import httpx
import pytest
from django.utils import timezone

from campaigns import dialer, legs, tasks
from campaigns.models import Call, Campaign, Contact
from tests import processes
from tests.conftest import make_call, make_contact

SIMULATOR_CONFIG = {"default": {"outcome": "answer", "ring_seconds": 0.3, "hangup_after": 3}}


def faults(sim, *faults):
    httpx.put(f"{sim.url}/_sim/faults", json=list(faults)).raise_for_status()


def requests_for(sim, token: str) -> list[dict]:
    """API requests the simulator received that carry this call's token (it logs form keys lower-cased)."""
    lines = sim.extra["wire_log"].read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == "request" and token in json.dumps(r)]


def queued_call(campaign, **campaign_fields) -> Call:
    Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.RUNNING, calls_total=1, calls_live=1,
                                                   contacts_total=1, **campaign_fields)
    campaign.refresh_from_db()
    contact = make_contact(campaign, state=Contact.State.CALLING, attempts=1)
    return make_call(campaign, contact=contact, attempt=1)


@pytest.fixture
def campaign(acme, sim):
    from tests.conftest import make_account, make_campaign

    return make_campaign(acme, account=make_account(acme, api_base_url=sim.url))


@pytest.fixture
def resent(monkeypatch):
    later = []
    monkeypatch.setattr(tasks.place_call, "apply_async", lambda args, countdown: later.append((args[0], countdown)))
    return later


def test_voice_ai_connects_with_this_calls_stream_url_token_and_callbacks(campaign, sim):
    Campaign.objects.filter(pk=campaign.pk).update(recording=Campaign.Recording.DUAL, time_limit=600, sample_rate=16000)
    call = queued_call(campaign)
    dialer.place_call(call.pk)

    call.refresh_from_db()
    assert call.state == Call.State.DIALING and call.exotel_sid and call.dialed_at
    [request] = requests_for(sim, call.token)
    body = request["body"]
    assert request["path"] == "/v1/Accounts/acme1/Calls/connect.json"
    assert body["streamurl"].startswith(f"ws://127.0.0.1:8000/streams/{call.token}?sample-rate=16000")
    assert body["customfield"] == call.token
    assert body["statuscallback"] == (
        f"http://127.0.0.1:8000/hooks/{campaign.workspace.webhook_token}/status?call={call.token}")
    assert body["statuscallbackevents[]"] == ["ringing", "answered", "terminal"]
    assert (body["record"], body["recordingchannels"], body["timelimit"]) == ("true", "dual", "600")


def test_a_task_delivered_twice_dials_once(campaign, sim):
    call = queued_call(campaign)
    dialer.place_call(call.pk)
    dialer.place_call(call.pk)
    assert len(requests_for(sim, call.token)) == 1


def test_flow_mode_dials_the_flow_with_the_token_and_no_stream_url(campaign, sim):
    flow = "https://my.exotel.com/acme1/exoml/start_voice/4321"
    call = queued_call(campaign, connect_mode=Campaign.ConnectMode.FLOW, flow_url=flow)
    dialer.place_call(call.pk)
    [request] = requests_for(sim, call.token)
    assert request["body"]["url"] == flow
    assert "streamurl" not in request["body"]
    assert request["body"]["statuscallbackevents[]"] == ["answered", "terminal"]


def test_legs_mode_creates_a_leg_that_reports_to_our_leg_event_endpoint(campaign, sim):
    call = queued_call(campaign, connect_mode=Campaign.ConnectMode.LEGS)
    dialer.place_call(call.pk)
    call.refresh_from_db()
    assert call.leg_sid
    [request] = requests_for(sim, call.token)
    assert request["body"]["leg_event_endpoint"].endswith(f"/hooks/{campaign.workspace.webhook_token}/legs")
    assert request["body"]["custom_param"] == call.token


def test_an_answered_leg_gets_greeting_and_stream_together_and_the_greeting_stops_when_the_bot_is_on(
    campaign, sim
):
    call = queued_call(campaign, connect_mode=Campaign.ConnectMode.LEGS, greeting_text="Namaste, one moment.")
    dialer.place_call(call.pk)
    call.refresh_from_db()
    processes.wait_until(
        lambda: any(c["sid"] == call.leg_sid and c["leg_state"] == "answered"
                    for c in httpx.get(f"{sim.url}/_sim/calls").json()),
        timeout=10, what="the leg to be answered",
    )
    Call.objects.filter(pk=call.pk).update(state=Call.State.IN_PROGRESS, answered_at=timezone.now())
    faults(sim, {"endpoint": "actions", "kind": "slow", "delay": 0.5, "times": 2})  # Exotel takes its time

    legs.answer_leg(call.pk)
    legs.stream_started(call.pk)

    records = [json.loads(line) for line in sim.extra["wire_log"].read_text().splitlines()]
    actions = [r for r in records if r["kind"] == "request" and f"/legs/{call.leg_sid}/actions" in r["path"]]
    names = [r["path"].rsplit("/", 1)[1] for r in actions]
    assert sorted(names[:2]) == ["start_say", "start_stream"] and names[2] == "stop_say"
    answered = [r["ts"] for r in records if r["kind"] == "response" and r["id"] in (actions[0]["id"], actions[1]["id"])]
    assert actions[1]["ts"] < min(answered)  # sent together: the second went before the first was answered
    call.refresh_from_db()
    assert call.dead_air_ms is not None and call.greeting_ended_at is not None


def test_a_429_puts_the_call_back_and_slows_the_campaign(campaign, sim, resent, django_capture_on_commit_callbacks):
    faults(sim, {"endpoint": "connect", "kind": "status", "status": 429, "retry_after": "7", "times": 1})
    call = queued_call(campaign)
    with django_capture_on_commit_callbacks(execute=True):
        dialer.place_call(call.pk)
    call.refresh_from_db()
    campaign.refresh_from_db()
    assert call.state == Call.State.QUEUED
    assert resent == [(call.pk, 7.0)]
    assert campaign.pace_factor == 0.5 and campaign.backoff_until > timezone.now()
    assert "rate limiting" in campaign.last_error
    assert Contact.objects.get().attempts == 1  # the attempt is not consumed


def test_a_500_retries_the_same_attempt_later(campaign, sim, resent, django_capture_on_commit_callbacks):
    faults(sim, {"endpoint": "connect", "kind": "status", "status": 503, "times": 1})
    call = queued_call(campaign)
    with django_capture_on_commit_callbacks(execute=True):
        dialer.place_call(call.pk)
    assert Call.objects.get(pk=call.pk).state == Call.State.QUEUED
    assert resent == [(call.pk, dialer.TRANSIENT_RETRY_SECONDS)]
    dialer.place_call(call.pk)  # the retry, after the fault has passed
    assert Call.objects.get(pk=call.pk).state == Call.State.DIALING
    assert len(requests_for(sim, call.token)) == 2  # two requests, one call: the first was refused


def test_refused_credentials_fail_the_call_and_pause_the_campaign_with_the_reason(campaign, sim, alice):
    type(campaign.account).objects.filter(pk=campaign.account_id).update(api_token="wrong-token")
    campaign.refresh_from_db()
    call = queued_call(campaign)
    dialer.place_call(call.pk)
    call.refresh_from_db()
    campaign.refresh_from_db()
    assert (call.state, campaign.state) == ("failed", "paused")
    assert "credentials" in campaign.last_error and "401" in campaign.last_error


def test_a_number_exotel_cannot_dial_fails_for_good(campaign, sim):
    call = queued_call(campaign, max_attempts=3)
    Call.objects.filter(pk=call.pk).update(phone="+12")
    dialer.place_call(call.pk)
    call.refresh_from_db()
    contact = Contact.objects.get()
    assert call.state == Call.State.FAILED and "From" in call.error
    assert (contact.state, contact.outcome) == ("done", "failed")


def test_a_lost_answer_leaves_the_call_unknown_until_its_callback(campaign, sim, monkeypatch):
    monkeypatch.setattr(dialer, "EXOTEL_TIMEOUT", httpx.Timeout(1.0, connect=1.0))
    faults(sim, {"endpoint": "connect", "kind": "timeout", "delay": 5, "times": 1})
    call = queued_call(campaign)
    dialer.place_call(call.pk)
    call.refresh_from_db()
    assert call.state == Call.State.UNKNOWN and not call.exotel_sid
    dialer.place_call(call.pk)  # redelivered: still never dialled twice
    assert len(requests_for(sim, call.token)) == 1


def test_a_paused_campaign_places_nothing(campaign, sim):
    call = queued_call(campaign)
    Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.PAUSED)
    dialer.place_call(call.pk)
    assert Call.objects.get(pk=call.pk).state == Call.State.QUEUED
    assert not requests_for(sim, call.token)


def test_a_worker_killed_between_the_request_and_the_database_write_never_dials_twice(campaign, sim, monkeypatch):
    import datetime

    from campaigns import calls
    from tests.callbacks.replay import replay

    real_send = dialer.send_call

    def send_then_die(client, call):
        real_send(client, call)  # the request reached Exotel ...
        raise SystemExit("killed")  # ... and the worker died before recording its answer

    monkeypatch.setattr(dialer, "send_call", send_then_die)
    call = queued_call(campaign)
    with pytest.raises(SystemExit):
        dialer.place_call(call.pk)
    monkeypatch.undo()
    dialer.place_call(call.pk)  # the broker delivers the task again
    assert len(requests_for(sim, call.token)) == 1

    calls.reap_stale_calls(now=timezone.now() + datetime.timedelta(minutes=2))
    call.refresh_from_db()
    assert (call.state, call.exotel_sid) == (Call.State.UNKNOWN, "")
    replay(campaign.workspace, "status_terminal_form", sid="CAfromexotel", token=call.token)  # carries the token
    call.refresh_from_db()
    assert (call.state, call.exotel_sid) == (Call.State.COMPLETED, "CAfromexotel")
    assert Contact.objects.get().outcome == "completed"


def queued_calls(campaign, count: int) -> list[Call]:
    Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.RUNNING, calls_total=count, calls_live=count,
                                                   contacts_total=count)
    return [make_call(campaign, contact=make_contact(campaign, state=Contact.State.CALLING, attempts=1), attempt=1)
            for _ in range(count)]


def test_a_message_of_several_calls_dials_each_once_even_delivered_twice(campaign, sim):
    queued = queued_calls(campaign, 3)
    tasks.place_calls([call.pk for call in queued])
    tasks.place_calls([call.pk for call in queued])  # delivered again
    assert [len(requests_for(sim, call.token)) for call in queued] == [1, 1, 1]
    assert {Call.objects.get(pk=call.pk).state for call in queued} == {Call.State.DIALING}


def test_a_worker_killed_mid_message_dials_no_attempt_twice_and_loses_none(campaign, sim, monkeypatch):
    """Killed while placing the second of three calls: the redelivered message places only the third."""
    import datetime

    from campaigns import calls

    first, second, third = queued_calls(campaign, 3)
    real_send = dialer.send_call

    def die_on_the_second(client, call):
        if call.pk == second.pk:
            real_send(client, call)  # the request reached Exotel ...
            raise SystemExit("killed")  # ... and the worker died before recording its answer
        return real_send(client, call)

    monkeypatch.setattr(dialer, "send_call", die_on_the_second)
    with pytest.raises(SystemExit):
        tasks.place_calls([first.pk, second.pk, third.pk])
    assert Call.objects.get(pk=third.pk).state == Call.State.QUEUED  # not reached: nothing lost yet
    monkeypatch.undo()
    tasks.place_calls([first.pk, second.pk, third.pk])  # acks_late: the broker delivers the message again
    assert [len(requests_for(sim, call.token)) for call in (first, second, third)] == [1, 1, 1]

    calls.reap_stale_calls(now=timezone.now() + datetime.timedelta(minutes=2))
    states = [Call.objects.get(pk=call.pk) for call in (first, second, third)]
    assert [(call.state, bool(call.exotel_sid)) for call in states] == [
        (Call.State.DIALING, True), (Call.State.UNKNOWN, False), (Call.State.DIALING, True)]


def test_one_calls_unexpected_error_does_not_hold_the_calls_after_it(campaign, sim, monkeypatch, caplog):
    first, second = queued_calls(campaign, 2)
    real_send = dialer.send_call

    def break_the_first(client, call):
        if call.pk == first.pk:
            raise RuntimeError("a bug")
        return real_send(client, call)

    monkeypatch.setattr(dialer, "send_call", break_the_first)
    tasks.place_calls([first.pk, second.pk])
    assert f"call {first.pk}: placing failed" in caplog.text
    assert Call.objects.get(pk=first.pk).state == Call.State.DIALING  # left for the reaper, as a lone task would
    assert len(requests_for(sim, second.token)) == 1


def leg_in(sim, call, *states):
    """A predicate: the simulator holds the call's leg in one of `states`."""
    return lambda: any(c["sid"] == call.leg_sid and c["leg_state"] in states
                       for c in httpx.get(f"{sim.url}/_sim/calls").json())


def answered_leg(campaign, sim, **campaign_fields) -> Call:
    """A Legs call the simulator has answered, as our leg_answered webhook leaves it."""
    call = queued_call(campaign, connect_mode=Campaign.ConnectMode.LEGS, **campaign_fields)
    dialer.place_call(call.pk)
    call.refresh_from_db()
    processes.wait_until(leg_in(sim, call, "answered", "terminated"), timeout=10, what="the leg to be answered")
    Call.objects.filter(pk=call.pk).update(state=Call.State.IN_PROGRESS, answered_at=timezone.now())
    return call


def test_a_stream_refused_on_a_live_leg_hangs_it_up_and_fails_the_call(campaign, sim):
    call = answered_leg(campaign, sim, greeting_text="")
    faults(sim, {"endpoint": "actions", "kind": "status", "status": 400, "times": 1})

    legs.answer_leg(call.pk)

    call.refresh_from_db()
    assert call.state == Call.State.FAILED and "start_stream refused" in call.error
    processes.wait_until(leg_in(sim, call, "terminated"), timeout=5, what="the leg to be hung up")


def test_a_stream_refused_because_the_callee_hung_up_first_leaves_the_call_to_its_end_event(campaign, sim):
    call = answered_leg(campaign, sim, greeting_text="Namaste")
    processes.wait_until(leg_in(sim, call, "terminated"), timeout=10, what="the callee to hang up")

    legs.answer_leg(call.pk)  # too late: Exotel refuses actions on an ended leg

    call.refresh_from_db()
    assert call.state == Call.State.IN_PROGRESS and not call.error  # leg_terminated settles it as answered
