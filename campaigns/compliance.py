"""The calling rules applied to the contacts the dispatcher claims: dial, wait for a window, hold, or skip.

`judge` sorts claimed contacts (their `Recipient` rows locked with them) by campaigns.rules, the same
function the pre-launch forecast runs over every pending contact (campaigns.forecast), so the panel
counts what the dispatcher does:
- outside the recipient's window: not due yet. Its next_attempt_at moves to the window's next
  opening, with every pending contact of the campaign in the same zones, so one tick moves a whole
  closed zone instead of spending its budget on it a contact at a time. Not a hold: a calendar.
- no opening within campaigns.rules.HORIZON_DAYS (or before the campaign ends): skipped for good;
- a number no call can reach (invalid, premium rate…): skipped for good;
- a number at its attempt cap: held, due again when the cap frees (next_attempt_at), not failed;
- otherwise dialled, and the attempt goes on the number's ledger in the same transaction.
Every skip and hold is a `Hold` row with its reason, when and until when.
"""

import datetime
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Q

from campaigns import rules, schedule
from campaigns.models import Campaign, Contact, Hold, Recipient

Reason = Hold.Reason


@dataclass
class Verdict:
    """What the rules say of one contact at one instant."""

    dial: bool = False
    opens_at: datetime.datetime | None = None  # its window is closed until then
    reason: str = ""  # a Hold.Reason: held (until set) or skipped for good
    until: datetime.datetime | None = None
    detail: str = ""
    allowed_by: str = ""


def judge(window: schedule.Window, policy: rules.Policy, contact: Contact, ledger: list[int], *,
          now: datetime.datetime) -> Verdict:
    """The rules for one contact whose number's ledger is `ledger` (its Recipient's attempts)."""
    if not contact.time_zone and (problem := rules.unreachable(contact.phone)):
        # Imports refuse such numbers and store the zones of those they take: only other paths get here.
        return Verdict(reason=Reason.UNREACHABLE, detail=problem)
    zones = rules.recipient_zones(contact.time_zone, contact.phone, fallback=window.time_zone)
    if not rules.may_dial(window, policy, zones, now):
        opens = rules.next_opening(window, policy, zones, now)
        if opens is None:
            return Verdict(reason=Reason.NO_WINDOW, detail=f"no opening in {', '.join(zones[:3])} "
                                                            f"within {rules.HORIZON_DAYS} days")
        return Verdict(opens_at=opens)
    frees = rules.cap_frees_at(ledger, policy, now)
    if frees is not None:
        day, week = rules.counts(ledger, now)
        return Verdict(reason=Reason.CAP, until=frees,
                       detail=f"{day} attempts in 24 h (cap {policy.per_day}), {week} in 7 d (cap {policy.per_week})")
    return Verdict(dial=True, allowed_by=rules.allowed_by(window, policy, zones, rules.recorded(ledger, now), now))


@dataclass
class Sorted:
    dial: list[Contact] = field(default_factory=list)
    allowed_by: dict[int, str] = field(default_factory=dict)
    skipped: list[int] = field(default_factory=list)  # closed for good: they count as done


def admit(campaign: Campaign, contacts: list[Contact], *, now: datetime.datetime) -> Sorted:
    """Apply the rules to claimed contacts (locked, with their recipients); returns those to dial.

    Call inside the claim's transaction: the ledger written here is what the next claim of the
    same number, by any campaign, reads once this commits.
    """
    window, policy = schedule.Window.of(campaign), rules.Policy.of(campaign.workspace)
    result, holds = Sorted(), []
    opening: dict[tuple[str, datetime.datetime], list[int]] = defaultdict(list)
    ledgers: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for contact in contacts:
        verdict = judge(window, policy, contact, contact.recipient.attempts, now=now)
        if verdict.dial:
            result.dial.append(contact)
            result.allowed_by[contact.pk] = verdict.allowed_by
            ledgers[tuple(rules.recorded(contact.recipient.attempts, now))].append(contact.recipient_id)
        elif verdict.opens_at:
            opening[(contact.time_zone, verdict.opens_at)].append(contact.pk)
        else:
            holds.append(Hold(workspace_id=campaign.workspace_id, campaign_id=campaign.pk, contact_id=contact.pk,
                              phone=contact.phone, reason=verdict.reason, detail=verdict.detail[:200], at=now,
                              until=verdict.until))
    for (zones, opens_at), contact_ids in opening.items():
        wait_for_window(campaign, zones, contact_ids, opens_at)
    # One UPDATE per distinct new ledger: a tick's first attempts all share one.
    for ledger, recipient_ids in ledgers.items():
        Recipient.objects.filter(pk__in=recipient_ids).update(attempts=list(ledger))
    result.skipped = record_holds(holds)
    return result


def wait_for_window(campaign: Campaign, zones: str, contact_ids: list[int], opens_at: datetime.datetime) -> None:
    """These contacts, and every pending one of the campaign in the same zones, are due at `opens_at`."""
    same_zones = Q(pk__in=contact_ids)
    if zones:  # a blank zone is the number's own: only the contacts judged are known to share it
        same_zones |= Q(time_zone=zones)
    Contact.objects.filter(same_zones, campaign=campaign, state=Contact.State.PENDING).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lt=opens_at)
    ).update(next_attempt_at=opens_at)


def record_holds(holds: list[Hold]) -> list[int]:
    """Store holds and skips; held contacts are due when their hold ends, skipped ones are closed.

    Returns the ids of the contacts skipped for good (the caller counts them as done).
    """
    if not holds:
        return []
    Hold.objects.bulk_create(holds)
    by_until = defaultdict(list)
    skipped = []
    for hold in holds:
        if hold.until is None:
            skipped.append(hold)
        else:
            by_until[hold.until].append(hold.contact_id)
    for until, contact_ids in by_until.items():
        Contact.objects.filter(pk__in=contact_ids).update(next_attempt_at=until)
    for reason in {hold.reason for hold in skipped}:
        Contact.objects.filter(pk__in=[h.contact_id for h in skipped if h.reason == reason]).update(
            state=Contact.State.SKIPPED, outcome=reason)
    return [hold.contact_id for hold in skipped]


def ensure_recipients(workspace_id: int, phones: list[str]) -> dict[str, int]:
    """The ledger row of each number in the workspace, made if new: {phone: recipient id}."""
    # A concurrent import of the same number makes the same row: not an error.
    Recipient.objects.bulk_create([Recipient(workspace_id=workspace_id, phone=p) for p in phones],
                                  ignore_conflicts=True)
    return dict(Recipient.objects.filter(workspace_id=workspace_id, phone__in=phones).values_list("phone", "pk"))


def give_back(recipient_attempts: list[tuple[int, datetime.datetime]]) -> None:
    """Withdrawn calls never dialled: take each one's attempt (its call's created_at) off its number's ledger."""
    for recipient_id, at in recipient_attempts:
        recipient = Recipient.objects.select_for_update().get(pk=recipient_id)
        ledger = list(recipient.attempts)
        if int(at.timestamp()) in ledger:
            ledger.remove(int(at.timestamp()))
            Recipient.objects.filter(pk=recipient_id).update(attempts=ledger)

