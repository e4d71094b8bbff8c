"""Storing deliveries raw and applying them to their calls, idempotently and in any order.

`receive` is the request's whole work for a status callback, Passthru or leg event: it parses the
delivery (pure, no query) and stores it in one statement that also finds the workspace, `pending`, or `malformed` with the reason
(answered 400). The applier (`callbacks.applier`) then applies pending deliveries off the request,
a batch at a time (`apply_batch`): it finds each one's call and applies the report in a transaction
that also stores the outcome: applied, duplicate (well-formed, changed nothing), orphaned (no such
call in this workspace) or failed (a bug: applying raised; the raw record stays). The stream-URL
request is answered from its call, so it is stored and applied in the request (`answer_now`). Idempotency comes from the call's state
rules (`campaigns.calls.advance`), so a repeated or late delivery finds nothing left to change.
"""

import logging
import operator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import reduce

from django.db import OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from callbacks.models import WebhookEvent
from callbacks.services import parsing
from campaigns import calls, dialer, donotcall, legs, machines
from campaigns.models import Call, DoNotCall
from transfers import engine

log = logging.getLogger(__name__)
FOLLOW_UPS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="follow-up")
Kind, Outcome, State = WebhookEvent.Kind, WebhookEvent.Outcome, Call.State
# Headers worth keeping for support; cookies and credentials never are.
NO_CALL = "no call in this workspace matches"
MATCHED_BY = ("token", "leg_sid", "exotel_sid")
KEPT_HEADERS = ("HTTP_USER_AGENT", "HTTP_X_EXOTEL_EVENT_SID", "HTTP_X_EXOTEL_REQUEST_ID", "HTTP_X_FORWARDED_FOR",
                "REMOTE_ADDR")


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: dict = field(default_factory=lambda: {"ok": True})


def receive(token: str, kind: str, request) -> Answer | None:
    """Store the delivery for the applier and answer: 200, or 400 when it is malformed (stored too);
    None, with nothing stored, when no workspace has the token."""
    event = delivery(kind, request)
    if not WebhookEvent.objects.create_for_token(token, event):
        return None
    return refusal(event) if event.outcome == Outcome.MALFORMED else Answer()


def answer_now(workspace, request) -> Answer:
    """A stream-URL request: Exotel waits for the URL, so it is stored, then applied in the request."""
    event = delivery(Kind.STREAM_URL, request)
    event.workspace = workspace
    event.save()
    return refusal(event) if event.outcome == Outcome.MALFORMED else apply(event)


def delivery(kind: str, request) -> WebhookEvent:
    """The raw delivery with its parsed fields, or marked malformed with the reason; not saved."""
    try:
        fields = parsing.fields_of(request)
        PARSERS[kind](fields)  # what would make it 4xx is decided here, on the request
        outcome, detail = Outcome.PENDING, ""
    except parsing.Malformed as error:
        fields, outcome, detail = {}, Outcome.MALFORMED, str(error)
    query = {storable(key): [storable(v) for v in values] for key, values in request.GET.lists()}
    return WebhookEvent(
        kind=kind, method=request.method,
        query={key: values if len(values) > 1 else values[0] for key, values in query.items()},
        body=storable(request.body.decode("utf-8", "replace")),
        content_type=storable(request.content_type or "")[:100],
        headers={name: storable(request.META[name]) for name in KEPT_HEADERS if name in request.META},
        fields=fields, outcome=outcome, detail=detail,
    )


def refusal(event: WebhookEvent) -> Answer:
    return Answer(400, {"error": f"malformed {event.get_kind_display().lower()}: {event.detail}"})


def storable(text: str) -> str:
    """`text` with what the database cannot store (NUL, lone surrogates) replaced by U+FFFD."""
    return parsing.UNSTORABLE.sub("\ufffd", text)


def apply_batch(events: list[WebhookEvent]) -> int:
    """Apply claimed deliveries in order, in the caller's transaction; how many were decided.

    Applying costs round trips more than anything (bench/RESULTS.md), so the batch's calls are
    found and locked in one query, each call's row is not read again, and the outcomes are written
    in one UPDATE. No delivery has a savepoint of its own: if one raises, the caller rolls the
    batch back and applies its deliveries one at a time with `apply`. A delivery whose follow-up
    waits on the commit (a leg's start_stream: dead air on the line) ends the batch there, so it
    leaves at once; the rest stay pending.
    """
    parsed = [(event, _parse(event)) for event in events]
    call_of = find_calls([(event.workspace_id, _match(report)) for event, report in parsed
                          if not isinstance(report, parsing.Malformed)])
    decided = []
    for event, report in parsed:
        if isinstance(report, parsing.Malformed):  # stored by a version that parsed it differently
            _decide(event, Outcome.MALFORMED, str(report))
        elif event.kind == Kind.LEG_EVENT and (changed := apply_transfer_event(event, report)) is not None:
            _decide(event, Outcome.APPLIED if changed else Outcome.DUPLICATE, "")
        elif (call := call_of(event.workspace_id, _match(report))) is None:
            _decide(event, Outcome.ORPHANED, NO_CALL)
        else:
            changed, _ = APPLIERS[event.kind](call, report, event.received_at)
            _decide(event, Outcome.APPLIED if changed else Outcome.DUPLICATE, "", call)
        decided.append(event)
        if connection.run_on_commit:
            break
    WebhookEvent.objects.bulk_update(decided, ["outcome", "detail", "call", "applied_at"])
    return len(decided)


def _parse(event: WebhookEvent):
    """The delivery's report, or the `Malformed` error it raises."""
    try:
        return PARSERS[event.kind](event.fields)
    except parsing.Malformed as error:
        return error


def _match(report) -> parsing.Match:
    return report if isinstance(report, parsing.Match) else report.match


def apply(event: WebhookEvent) -> Answer:
    """Apply a stored delivery to its call and store the outcome on the event.

    A lost connection or a deadlock (OperationalError) is raised with the event left pending, to
    be applied again; anything else raised while applying marks it failed.
    """
    try:
        report = PARSERS[event.kind](event.fields)
    except parsing.Malformed as error:  # stored by a version that parsed it differently
        _mark(event, Outcome.MALFORMED, str(error))
        return refusal(event)
    if event.kind == Kind.LEG_EVENT and (changed := apply_transfer_event(event, report)) is not None:
        _mark(event, Outcome.APPLIED if changed else Outcome.DUPLICATE, "")
        return Answer()
    call = find_call(event.workspace_id, _match(report))
    if call is None:
        _mark(event, Outcome.ORPHANED, NO_CALL)
        # Answered 200 so Exotel stops retrying; a stream-URL request cannot be answered without a call.
        return Answer(404, {"error": "no such call"}) if event.kind == Kind.STREAM_URL else Answer()
    try:
        with transaction.atomic():  # the outcome commits with what it describes: one commit
            # Every decision below reads the call as it is now, under its row lock: a row read
            # before the lock may predate an event applied meanwhile (an answer before an end).
            call = calls.lock(call)
            changed, answer = APPLIERS[event.kind](call, report, event.received_at)
            _mark(event, Outcome.APPLIED if changed else Outcome.DUPLICATE, "", call)
    except OperationalError:
        raise
    except Exception as error:
        log.exception("applying webhook event %s failed", event.pk)
        _mark(event, Outcome.FAILED, f"{type(error).__name__}: {error}", call)
        return Answer(500, {"error": "stored, but applying it failed; please retry"})
    return answer


def apply_transfer_event(event: WebhookEvent, report: parsing.LegEvent) -> bool | None:
    """An agent's leg or a bridge of a transfer (transfers.engine), applied: whether it changed anything;
    None when it is a call's own leg event."""
    if report.name.startswith("bridge_"):
        legs = report.data.get("leg_sids")
        legs = [sid for sid in legs if isinstance(sid, str)] if isinstance(legs, list) else []
        return engine.on_bridge_event(event.workspace_id, report.name, report.data["bridge_sid"], event.received_at,
                                      legs)
    transfer = engine.transfer_of_leg(event.workspace_id, report.match.token, report.match.leg_sid)
    if transfer is None:
        return None
    end_state = ""
    if report.name in ("leg_terminated", "leg_failed_to_create"):
        end_state = parsing.leg_end_state(report, answered=False).value
    with transaction.atomic(savepoint=False):
        changed, next_step = engine.on_agent_leg_event(transfer, report.name, report.match.leg_sid, end_state,
                                                       event.received_at)
        if next_step:
            transaction.on_commit(lambda: follow_up(next_step, transfer.pk))
    return changed


def _decide(event: WebhookEvent, outcome: str, detail: str, call: Call | None = None) -> None:
    event.outcome, event.detail, event.call, event.applied_at = outcome, detail, call, timezone.now()


def _mark(event: WebhookEvent, outcome: str, detail: str, call: Call | None = None) -> None:
    _decide(event, outcome, detail, call)
    WebhookEvent.objects.filter(pk=event.pk).update(outcome=outcome, detail=detail, call=call,
                                                    applied_at=event.applied_at)


def find_call(workspace_id: int, match: parsing.Match) -> Call | None:
    """Our token first (it is ours and exact), then Exotel's sids; always inside the workspace."""
    calls_here = Call.objects.filter(workspace_id=workspace_id)
    if match.token and (call := calls_here.filter(token=match.token).first()):
        return call
    if match.leg_sid and (call := calls_here.filter(leg_sid=match.leg_sid).first()):
        return call
    if match.sid:
        return calls_here.filter(exotel_sid=match.sid).first()
    return None


def find_calls(matches: list[tuple[int, parsing.Match]]):
    """`find_call` for many (workspace id, match) pairs at once: every call they may name, found and
    locked in one query, in id order (so two lockers never wait on each other in a cycle). Returns
    the lookup `(workspace id, match) -> call or None`, which chooses as `find_call` does."""
    names = {}  # workspace id -> column -> values
    for workspace_id, match in matches:
        for column, value in _names(match):
            names.setdefault(workspace_id, {}).setdefault(column, set()).add(value)
    found = {}
    if names:
        named = reduce(operator.or_, (
            Q(workspace_id=workspace_id) & reduce(operator.or_, (Q(**{f"{column}__in": values})
                                                                for column, values in columns.items()))
            for workspace_id, columns in names.items()))
        for call in Call.objects.select_for_update().filter(named).order_by("pk"):
            for column in MATCHED_BY:
                found.setdefault((call.workspace_id, column, getattr(call, column)), call)  # the oldest, as first()

    def call_of(workspace_id: int, match: parsing.Match) -> Call | None:
        return next((found[key] for column, value in _names(match) if (key := (workspace_id, column, value)) in found),
                    None)

    return call_of


def _names(match: parsing.Match) -> list[tuple[str, str]]:
    """The columns the match may find its call by, in the order `find_call` tries them, with their values."""
    return [(column, value) for column, value in zip(MATCHED_BY, (match.token, match.leg_sid, match.sid), strict=True) if value]


def _sids(match: parsing.Match) -> dict:
    return {"exotel_sid": match.sid, "leg_sid": match.leg_sid}


def apply_status(call: Call, report: parsing.StatusReport, at) -> tuple[bool, Answer]:
    if report.answered_by and machines.detects(call.campaign):
        # Before the change, which may end the call: its counters and retry policy read the decision.
        call.answered_by = machines.record_verdict(call.pk, source=machines.EXOTEL, result=report.answered_by, at=at)
    fields = {**_sids(report.match), "duration": report.duration, "recording_url": report.recording_url}
    changed = report.state is not None and calls.advance(call, report.state, at=at, held=True, **fields)
    changed = changed or calls.fill(call, held=True, **fields)
    return changed, Answer()


def apply_passthru(call: Call, report: parsing.PassthruReport, at) -> tuple[bool, Answer]:
    changed = calls.fill(call, held=True, exotel_sid=report.match.sid, **report.fields)
    changed |= engine.note_flow_agent(call, report.agent_number, at)
    disposition = report.fields["disposition"]
    if donotcall.means_opt_out(disposition):  # for every campaign of the workspace, from now on
        changed |= donotcall.opt_out(call, source=DoNotCall.Source.PASSTHRU,
                                     reason=f"Passthru disposition {disposition!r}")
    return changed, Answer()


def apply_leg_event(call: Call, event: parsing.LegEvent, at) -> tuple[bool, Answer]:
    sids = _sids(event.match)
    if event.name == "leg_ringing":
        changed = calls.advance(call, State.RINGING, at=at, held=True, **sids)
    elif event.name == "leg_answered":
        changed = calls.advance(call, State.IN_PROGRESS, at=at, held=True, **sids)
        if changed:  # once per call, however often Exotel repeats the event; at once: dead air
            transaction.on_commit(lambda: follow_up(legs.answer_leg, call.pk))
    elif event.name in ("leg_terminated", "leg_failed_to_create"):
        state = parsing.leg_end_state(event, answered=call.answered_at is not None)
        error = "" if state == State.COMPLETED else parsing.leg_failure(event)
        changed = calls.advance(call, state, at=at, error=error, held=True, **sids)
    elif event.name == "say_completed":
        changed = bool(Call.objects.filter(pk=call.pk, greeting_ended_at__isnull=True).update(greeting_ended_at=at))
    elif event.name == "amd_result_success":
        changed = machines.detects(call.campaign) and _amd_result(call, event, at)
    elif event.name == "stream_started":  # the stream server reports it too; the first one stops the greeting
        transaction.on_commit(lambda: follow_up(legs.stream_started, call.pk))
        changed = True
    else:  # connecting, play events and anything new: nothing to change
        changed = calls.fill(call, held=True, **sids)
    return changed, Answer()


def _amd_result(call: Call, event: parsing.LegEvent, at) -> bool:
    """Exotel's verdict; a machine to hang up on is hung up at once if the call is already ours
    (async_amd), else when its `leg_answered` comes (legs.answer_leg)."""
    before = call.amd_verdicts.get(machines.EXOTEL)
    decision = machines.record_verdict(call.pk, source=machines.EXOTEL, result=parsing.amd_result(event), at=at)
    if decision == machines.MACHINE and call.state == State.IN_PROGRESS and before is None:
        transaction.on_commit(lambda: follow_up(legs.hang_up_machine, call.pk))
    return before is None


def follow_up(action, call_id: int) -> None:
    """Run `action(call_id)` (it calls Exotel) beside the applier: waiting for Exotel's answer in
    the applier's loop would hold every delivery behind it, other calls' leg_answered too."""
    FOLLOW_UPS.submit(_run_follow_up, action, call_id)


def _run_follow_up(action, call_id: int) -> None:
    # A follow-up that fails is logged: the event it follows was applied and committed.
    try:
        action(call_id)
    except Exception:
        log.exception("follow-up %s of call %s failed", action.__name__, call_id)
    finally:
        connection.close()  # this thread's; the pool keeps it


def answer_stream_url(call: Call, match: parsing.Match, at) -> tuple[bool, Answer]:
    """The flow's Voicebot applet gets this call's stream URL (sample rate, parameters)."""
    changed = calls.fill(call, held=True, exotel_sid=match.sid)
    return changed, Answer(200, {"url": dialer.bot_stream_url(call)})


PARSERS = {
    Kind.STATUS: parsing.parse_status,
    Kind.PASSTHRU: parsing.parse_passthru,
    Kind.LEG_EVENT: parsing.parse_leg_event,
    Kind.STREAM_URL: parsing.parse_stream_url_request,
}
APPLIERS = {
    Kind.STATUS: apply_status,
    Kind.PASSTHRU: apply_passthru,
    Kind.LEG_EVENT: apply_leg_event,
    Kind.STREAM_URL: answer_stream_url,
}
