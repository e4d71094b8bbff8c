"""Exotel accounts as the `exotel` package sees them, and their shared stream capacity.

Stream capacity is read through `ActiveStreams` and kept on the ExotelAccount row, so every
campaign of the account, in every worker, shares one reading. The dispatcher's tick never calls
Exotel: a beat task sends one `read_stream_capacity` task per account with running campaigns
whose reading is older than `STREAMS_FRESH_FOR`, and that task makes one attempt with a short
timeout, so an account whose API is slow or down (its URL is the tenant's) delays only itself. A
failure is kept on the row too (`streams_error`), and the account is asked again only after
`FAILED_READING_WAIT`; meanwhile the tick uses the last good reading. Exotel's count only moves
when streams open and close, while the dispatcher starts calls in between, so `stream_headroom`
also counts our own unfinished calls on the account.

Each reading is also compared with our own live calls on the account: `streams_mismatch_since`
holds since when every reading has disagreed, and the dashboard warns once that passes a minute.
"""

import datetime
import logging

import httpx
from django.conf import settings
from django.db.models import Q, Sum
from django.utils import timezone

from campaigns import lifecycle
from campaigns.models import Call, Campaign
from exotel.client import Account, ExotelClient, RetryPolicy
from exotel.errors import (
    AuthenticationError,
    ExotelError,
    OutcomeUnknownError,
    RateLimitedError,
    TransientError,
    ValidationError,
)
from tenancy import weburls
from tenancy.models import ExotelAccount

log = logging.getLogger(__name__)
STREAMS_FRESH_FOR = datetime.timedelta(seconds=10)
FAILED_READING_WAIT = datetime.timedelta(seconds=60)
MISMATCH_WARNING_AFTER = datetime.timedelta(minutes=1)
# One attempt, answered quickly or not at all: the next reading is seconds away.
CAPACITY_TIMEOUT = httpx.Timeout(3.0, connect=2.0)
CAPACITY_RETRY = RetryPolicy(attempts=1)


def exotel_account(account: ExotelAccount) -> Account:
    return Account(
        account_sid=account.account_sid,
        api_key=account.api_key,
        api_token=account.api_token,
        region=account.region,
        base_url_override=account.api_base_url,
        number_form=account.number_form,
    )


def client_for(account: ExotelAccount, **options) -> ExotelClient:
    """A blocking client for the account (decrypted credentials, region, override); close it after use.

    A base URL the tenant typed is checked first (tenancy.weburls): a refused one raises exotel's
    ValidationError, so callers treat it as any request that could not be sent.
    """
    if account.api_base_url:
        try:
            weburls.check_outbound(account.api_base_url, hosts=settings.EXOTEL_API_HOSTS)
        except weburls.Refused as exc:
            raise ValidationError("API base URL", str(exc)) from None
    return ExotelClient(exotel_account(account), **options)


def explain(error: ExotelError) -> str:
    """What went wrong, for the page: our words, the HTTP status and Exotel's code, never the answer's body."""
    if isinstance(error, ValidationError):
        return str(error)  # ours: nothing was sent
    status = f" (HTTP {error.status})" if error.status else ""
    code = f" [code {error.code}]" if error.code else ""
    return f"{FAILURES.get(type(error), 'Exotel refused the request')}{status}{code}."


FAILURES = {
    AuthenticationError: "Exotel refused the API key and token, or the account may not use this API",
    RateLimitedError: "Exotel is rate limiting this account; try again in a minute",
    TransientError: "Exotel could not be reached or failed to answer",
    OutcomeUnknownError: "Exotel did not answer in time",
    ExotelError: "Exotel's answer could not be read",
}


def refresh_stream_capacity(account: ExotelAccount, *, now: datetime.datetime | None = None,
                            **client_options) -> ExotelAccount:
    """Read live/allowed streams now and store them; raises the typed exotel error on failure.

    The dashboard's "test connection" calls it as is; `read_stream_capacity` with one short attempt.
    """
    now = now or timezone.now()
    with client_for(account, **client_options) as client:
        streams = client.active_streams()
    ours = live_calls(account)
    if streams.active != ours and account.streams_mismatch_since is None:
        log.info("account %s: Exotel reports %d active streams, we count %d live calls", account, streams.active, ours)
    fields = {
        "max_allowed_streams": streams.max_allowed, "active_streams": streams.active, "streams_read_at": now,
        "streams_checked_at": now, "streams_error": "",
        "streams_mismatch_since": None if streams.active == ours else (account.streams_mismatch_since or now),
    }
    ExotelAccount.objects.filter(pk=account.pk).update(**fields)
    for name, value in fields.items():
        setattr(account, name, value)
    return account


def accounts_to_read(*, now: datetime.datetime | None = None) -> list[int]:
    """Accounts with running campaigns whose capacity reading is stale (a failed one waits longer)."""
    now = now or timezone.now()
    running = ExotelAccount.objects.filter(campaigns__state=Campaign.State.RUNNING).distinct()
    due = (
        Q(streams_checked_at__isnull=True)
        | Q(streams_error="", streams_checked_at__lt=now - STREAMS_FRESH_FOR)
        | Q(streams_checked_at__lt=now - FAILED_READING_WAIT)
    )
    return list(running.filter(due).values_list("pk", flat=True))


def read_stream_capacity(account_id: int, *, now: datetime.datetime | None = None) -> None:
    """One short attempt at an account's streams; a failure is kept on the row, refused credentials pause."""
    now = now or timezone.now()
    account = ExotelAccount.objects.get(pk=account_id)
    try:
        refresh_stream_capacity(account, now=now, timeout=CAPACITY_TIMEOUT, retry=CAPACITY_RETRY)
    except ExotelError as error:
        log.warning("could not read active streams of %s: %s", account, error)
        ExotelAccount.objects.filter(pk=account_id).update(
            streams_checked_at=now, streams_error=explain(error)[:300])
        if isinstance(error, AuthenticationError):
            for campaign in Campaign.objects.filter(account=account, state=Campaign.State.RUNNING):
                lifecycle.pause_for_error(campaign, f"Exotel refused the account's credentials: {error}")


def live_calls(account: ExotelAccount) -> int:
    """Our calls on the account that Exotel should count as holding a stream (dialled, not final)."""
    return Call.objects.filter(campaign__account=account, state__in=Call.LIVE_STATES).count()


def stream_mismatch(account: ExotelAccount, *, now: datetime.datetime) -> bool:
    """Whether Exotel's count and ours have disagreed at every reading for over a minute."""
    since = account.streams_mismatch_since
    return since is not None and now - since > MISMATCH_WARNING_AFTER


def stream_headroom(account: ExotelAccount) -> int | None:
    """Streams the account may still open, or None when its capacity has never been read.

    Our own unfinished calls (queued to in-progress) will each hold a stream, and Exotel's last
    count may predate the newest of them, so the larger of the two is taken as what is live.
    """
    if account.max_allowed_streams is None:
        return None
    ours = Campaign.objects.filter(account=account, calls_live__gt=0).aggregate(n=Sum("calls_live"))["n"] or 0
    return max(0, account.max_allowed_streams - max(account.active_streams or 0, ours))
