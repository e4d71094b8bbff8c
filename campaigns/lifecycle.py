"""A campaign's lifecycle: start, pause, resume, cancel, complete; each change recorded with who made it.

Every change locks the campaign row, validates through `Campaign.transition` (InvalidTransition for
an impossible one, which the dashboard shows as a message) and writes a CampaignEvent in the same
transaction. Only `state` and `last_error` are saved, never the whole row: the counters move
concurrently with F() updates and a full save would write stale values over them.

Pausing and cancelling withdraw the calls that are queued but not yet dialled: Exotel never saw them,
so their contacts get their attempt back. Calls already dialling finish on their own. A campaign
whose budget is spent is not started or resumed (campaigns/costs.py pauses it when it gets there).
"""

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from campaigns import compliance, costs, donotcall, rollups
from campaigns.models import Call, Campaign, CampaignEvent, Contact, InvalidTransition
from integrations import outbox

State = Campaign.State
ACTIONS = ("start", "pause", "resume", "cancel")  # what people do; each names <action>_campaign below


def _change(campaign: Campaign, new: State, *, by, action: str, note: str = "", last_error: str | None = None,
            withdraw_queued: bool = False, only_from: tuple[State, ...] = ()) -> Campaign:
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if only_from and locked.state not in only_from:
            raise InvalidTransition(f"A {locked.state} campaign cannot be {action}.")
        locked.transition(new)
        fields = ["state", "updated_at"]
        if last_error is not None:
            locked.last_error = last_error[:500]
            fields.append("last_error")
        if new == State.RUNNING:
            # A resumed campaign starts with an empty bucket, never a burst of what the pause saved.
            locked.pace_credit, locked.paced_at, locked.backoff_until = 0, None, None
            fields += ["pace_credit", "paced_at", "backoff_until"]
        locked.save(update_fields=fields)
        if withdraw_queued:
            withdraw_queued_calls(locked)
        CampaignEvent.objects.create(
            workspace_id=locked.workspace_id, campaign=locked, action=action, by=by, note=note[:500]
        )
    campaign.state, campaign.last_error = locked.state, locked.last_error
    return campaign


def _start_state(campaign: Campaign, now) -> State:
    """Running at once, or scheduled until its start time comes."""
    return State.SCHEDULED if campaign.starts_at and campaign.starts_at > now else State.RUNNING


def refuse_stale_scrub(campaign: Campaign, now) -> None:
    if problem := donotcall.scrub_problem(campaign, now=now):
        raise InvalidTransition(f"{problem} Import the registry's current file on the do-not-call page.")


def start_campaign(campaign: Campaign, *, by, now=None) -> Campaign:
    if not Contact.objects.filter(campaign=campaign).exists():
        raise InvalidTransition("A campaign needs contacts before it can start.")
    now = now or timezone.now()
    refuse_stale_scrub(campaign, now)
    costs.refuse_spent_budget(campaign)
    new = _start_state(campaign, now)
    action = "scheduled" if new == State.SCHEDULED else "started"
    return _change(campaign, new, by=by, action=action, last_error="", only_from=(State.DRAFT,))


def begin_due_campaigns(*, now) -> int:
    """Scheduled campaigns whose start time has come begin running; returns how many did."""
    begun = 0
    for campaign in Campaign.objects.filter(state=State.SCHEDULED, starts_at__lte=now):
        try:
            _change(campaign, State.RUNNING, by=None, action="began", only_from=(State.SCHEDULED,))
        except InvalidTransition:
            continue  # paused or begun by someone else since the query
        begun += 1
    return begun


def pause_campaign(campaign: Campaign, *, by, reason: str = "") -> Campaign:
    """No new dials; live calls finish. `reason` (an error) is shown on the campaign."""
    return _change(campaign, State.PAUSED, by=by, action="paused", note=reason, last_error=reason or None,
                   withdraw_queued=True)


def resume_campaign(campaign: Campaign, *, by, now=None) -> Campaign:
    now = now or timezone.now()
    refuse_stale_scrub(campaign, now)
    costs.refuse_spent_budget(campaign)
    new = _start_state(campaign, now)
    return _change(campaign, new, by=by, action="resumed", last_error="", only_from=(State.PAUSED,))


def cancel_campaign(campaign: Campaign, *, by) -> Campaign:
    """Stop for good: queued calls withdrawn, pending contacts closed; live calls finish."""
    with transaction.atomic():
        _change(campaign, State.CANCELLED, by=by, action="cancelled", withdraw_queued=True)
        closed = Contact.objects.filter(campaign=campaign, state=Contact.State.PENDING).update(
            state=Contact.State.CANCELLED, outcome="cancelled"
        )
        Campaign.objects.filter(pk=campaign.pk).update(contacts_done=F("contacts_done") + closed)
        outbox.campaign_ended(Campaign.objects.get(pk=campaign.pk))  # commits with the cancellation
    return campaign


def pause_for_error(campaign: Campaign, reason: str) -> bool:
    """The system pauses a running campaign (refused credentials, no balance). False if not running."""
    try:
        pause_campaign(campaign, by=None, reason=reason)
    except InvalidTransition:
        record_error(campaign, reason)
        return False
    return True


def record_error(campaign: Campaign, message: str) -> None:
    """Show a problem on the campaign without changing its state."""
    Campaign.objects.filter(pk=campaign.pk).update(last_error=message[:500])
    campaign.last_error = message[:500]


def complete_if_done(campaign: Campaign | int) -> bool:
    """Complete a running campaign once every contact is final and no call is live."""
    pk = campaign if isinstance(campaign, int) else campaign.pk
    with transaction.atomic(savepoint=False):
        # One conditional UPDATE: two workers finishing the last two calls complete it once.
        completed = Campaign.objects.filter(
            pk=pk, state=State.RUNNING, contacts_done__gte=F("contacts_total"), calls_live__lte=0
        ).update(state=State.COMPLETED)
        if completed:
            ended = Campaign.objects.get(pk=pk)
            CampaignEvent.objects.create(workspace_id=ended.workspace_id, campaign_id=pk, action="completed")
            outbox.campaign_ended(ended)
    if completed and not isinstance(campaign, int):
        campaign.state = State.COMPLETED
    return bool(completed)


def withdraw_queued_calls(campaign: Campaign) -> int:
    """Delete calls not yet dialled and give their contacts the attempt back; call in a transaction.

    `place_call` claims with `UPDATE … WHERE state = 'queued'`: a call it claimed first is dialling
    and stays; one deleted here first makes that UPDATE match nothing. The attempt comes off the
    number's ledger too: the caps count dials, and this one never happened.
    """
    queued = list(
        Call.objects.select_for_update(of=("self",))
        .filter(campaign=campaign, state=Call.State.QUEUED)
        .values_list("pk", "contact_id", "contact__recipient_id", "created_at")
    )
    if not queued:
        return 0
    call_ids, contact_ids, recipient_ids, created = zip(*queued, strict=True)
    compliance.give_back(list(zip(recipient_ids, created, strict=True)))
    Call.objects.filter(pk__in=call_ids).delete()
    rollups.uncount_placed(campaign.pk, created)
    Contact.objects.filter(pk__in=contact_ids, state=Contact.State.CALLING).update(
        state=Contact.State.PENDING, attempts=F("attempts") - 1
    )
    Campaign.objects.filter(pk=campaign.pk).update(
        calls_total=F("calls_total") - len(call_ids), calls_live=F("calls_live") - len(call_ids)
    )
    return len(call_ids)
