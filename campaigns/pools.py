"""Caller-ID pools: which of a campaign's Exophones each call dials from.

A campaign dials from a pool of its account's Exophones. For each contact the dispatcher claims,
in the claim's transaction, it takes the least recently used number of the pool that may call the
contact's country and whose circuit breaker lets it dial (campaigns/breaker.py); with
`prefer_local_caller_id`, a number in the contact's area comes first. The pool's rows are locked
(`FOR UPDATE`, in id order, so overlapping pools cannot deadlock) and their `last_used_at` written
before the transaction ends: a second dispatcher planning a campaign that shares numbers waits for
the first, then sees its choices, so the rotation holds across dispatchers. Exotel's per-account
limits are untouched by a pool: its numbers all belong to the campaign's account, and pacing,
concurrency and stream headroom are counted per campaign and account, never per number.

Countries: an Exophone may call the country calling codes in its `allowed_countries`, by default
its own (`Exophone.calling_codes`). A contact no number of the pool may call is skipped for good
(a Hold, reason COUNTRY_NOT_ALLOWED); the pre-launch forecast counts them with `in_countries`.
Calling codes, not ISO countries, because contacts are stored in E.164 and codes are prefix-free,
so the test is an exact prefix match; the cost is that +1 (US, Canada, the Caribbean) and
+7 (Russia, Kazakhstan) are one country each here.

Areas: phonenumbers' geocoder names the area of fixed lines (Indian landlines: the city, as
"Bangalore, Karnataka"; NANP numbers: "San Francisco, CA"), but of an Indian mobile number it knows
only "India": the telecom circle of a mobile number is not in its data (and number portability
would make a prefix table wrong anyway). So the preference works where both numbers carry an area
and changes nothing for Indian mobiles, which get plain rotation.
"""

import datetime
import functools
from dataclasses import dataclass, field

import phonenumbers
from django.core.exceptions import ValidationError
from phonenumbers import geocoder

from campaigns.models import Campaign, Contact, Hold
from tenancy.models import Exophone

COUNTRY_NOT_ALLOWED = Hold.Reason.COUNTRY_NOT_ALLOWED
NEVER = datetime.datetime.min.replace(tzinfo=datetime.UTC)
MICROSECOND = datetime.timedelta(microseconds=1)
Breaker = Exophone.Breaker


@dataclass
class Choice:
    """The dispatcher's answer for a batch of contacts."""

    caller_ids: dict[int, Exophone] = field(default_factory=dict)  # contact id -> the number it would dial from
    used_at: dict[int, datetime.datetime] = field(default_factory=dict)  # contact id -> its turn in the rotation
    not_allowed: list[Hold] = field(default_factory=list)  # skips: no number of the pool may call them
    paused: str = ""  # every number of the pool is paused: why (the campaign pauses with it)


def check_pool(account, exophones) -> None:
    """A campaign's pool (a relation, so not in Campaign.clean) holds numbers of its account only."""
    if any(exophone.account_id != account.pk for exophone in exophones):
        raise ValidationError({"exophones": "Every Exophone of the pool must belong to the campaign's Exotel account."})


def may_call(exophone: Exophone, phone: str) -> bool:
    return in_countries(phone, exophone.calling_codes)


def calling_codes(campaign: Campaign) -> frozenset[int]:
    """The country calling codes some number of the campaign's pool may call."""
    return calling_codes_of(campaign.exophones.all())


def calling_codes_of(exophones) -> frozenset[int]:
    return frozenset().union(*(e.calling_codes for e in exophones))


def in_countries(phone: str, codes) -> bool:
    return any(phone.startswith(f"+{code}") for code in codes)


@functools.lru_cache(maxsize=4096)
def area_of(phone: str) -> str:
    """The area phonenumbers' geocoder names for a number, or "" when it knows only the country."""
    number = phonenumbers.parse(phone)
    area = geocoder.description_for_number(number, "en")
    return "" if area == geocoder.country_name_for_number(number, "en") else area


def paused_reason(pool: list[Exophone]) -> str:
    """Why the campaign cannot dial, when every number of its pool is paused by its breaker; else ""."""
    if not pool or any(e.breaker != Breaker.OPEN for e in pool):
        return ""
    numbers = "; ".join(f"{e.number} until {e.breaker_until:%H:%M:%S} UTC: {e.breaker_reason}" for e in pool)
    return f"Every caller ID of the pool is paused by its circuit breaker ({numbers})."


def choose_caller_ids(campaign: Campaign, contacts: list[Contact], *, now: datetime.datetime) -> Choice:
    """A number of the pool for each contact, the pool locked; call inside the claim's transaction.

    Nothing is written: `mark_used` rotates the numbers of the contacts actually dialled (the calling
    rules may still hold some). A contact left out of both `caller_ids` and `not_allowed` waits: the
    numbers that may call it are paused, or on trial with their one call placed.
    """
    pool = list(Exophone.objects.select_for_update(of=("self",)).filter(campaigns=campaign).order_by("pk"))
    choice = Choice(paused=paused_reason(pool))
    if choice.paused or not contacts:
        return choice
    usable = [e for e in pool if e.breaker == Breaker.CLOSED or (e.breaker == Breaker.HALF_OPEN and not on_trial(e))]
    # Each use a microsecond after the pool's latest, so the order of use within a tick carries over.
    clock = max([now, *(e.last_used_at + MICROSECOND for e in pool if e.last_used_at)])
    for contact in contacts:
        candidates = [e for e in usable if may_call(e, contact.phone)]
        if not candidates:
            if not any(may_call(e, contact.phone) for e in pool):
                choice.not_allowed.append(Hold(
                    workspace_id=campaign.workspace_id, campaign_id=campaign.pk, contact_id=contact.pk,
                    phone=contact.phone, reason=COUNTRY_NOT_ALLOWED, at=now,
                    detail=f"the pool's numbers may call +{', +'.join(map(str, sorted(calling_codes_of(pool))))}"))
            continue
        area = area_of(contact.phone) if campaign.prefer_local_caller_id else ""
        candidates = [e for e in candidates if area and area_of(e.number) == area] or candidates
        exophone = min(candidates, key=lambda e: (e.last_used_at or NEVER, e.pk))
        exophone.last_used_at, clock = clock, clock + MICROSECOND
        choice.caller_ids[contact.pk], choice.used_at[contact.pk] = exophone, exophone.last_used_at
        if exophone.breaker == Breaker.HALF_OPEN:
            usable.remove(exophone)  # its one trial call
    return choice


def mark_used(choice: Choice, dialled: list[Contact]) -> None:
    """The numbers of the contacts dialled become the most recently used (in the claim's transaction)."""
    latest: dict[int, datetime.datetime] = {}
    for contact in dialled:
        pk = choice.caller_ids[contact.pk].pk
        latest[pk] = max(latest.get(pk, NEVER), choice.used_at[contact.pk])
    Exophone.objects.bulk_update([Exophone(pk=pk, last_used_at=at) for pk, at in latest.items()], ["last_used_at"])


def on_trial(exophone: Exophone) -> bool:
    """A half-open number whose one trial call has been placed (it was used since the breaker changed)."""
    return bool(exophone.last_used_at and exophone.breaker_changed_at
                and exophone.last_used_at >= exophone.breaker_changed_at)
