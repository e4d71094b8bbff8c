"""Exotel accounts as the `exotel` package sees them, and their shared stream capacity.

Stream capacity is read through `ActiveStreams` and kept on the ExotelAccount row, so every
campaign of the account, in every worker, shares one reading; it is read again once older than
`STREAMS_FRESH_FOR`. Exotel's count only moves when streams open and close, while the dispatcher
starts calls in between, so `stream_headroom` also counts our own unfinished calls on the account.
"""

import datetime

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from campaigns.models import Campaign
from exotel.client import Account, ExotelClient
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

STREAMS_FRESH_FOR = datetime.timedelta(seconds=10)


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


def refresh_stream_capacity(account: ExotelAccount, *, force: bool = False,
                            now: datetime.datetime | None = None) -> ExotelAccount:
    """Read live/allowed streams unless a fresh reading exists; raises the typed exotel error on failure.

    The dashboard's "test connection" passes force=True.
    """
    now = now or timezone.now()
    if not force and account.streams_read_at and now - account.streams_read_at < STREAMS_FRESH_FOR:
        return account
    with client_for(account) as client:
        streams = client.active_streams()
    account.max_allowed_streams, account.active_streams, account.streams_read_at = (
        streams.max_allowed, streams.active, now
    )
    ExotelAccount.objects.filter(pk=account.pk).update(
        max_allowed_streams=streams.max_allowed, active_streams=streams.active, streams_read_at=now
    )
    return account


def stream_headroom(account: ExotelAccount) -> int | None:
    """Streams the account may still open, or None when its capacity has never been read.

    Our own unfinished calls (queued to in-progress) will each hold a stream, and Exotel's last
    count may predate the newest of them, so the larger of the two is taken as what is live.
    """
    if account.max_allowed_streams is None:
        return None
    ours = Campaign.objects.filter(account=account, calls_live__gt=0).aggregate(n=Sum("calls_live"))["n"] or 0
    return max(0, account.max_allowed_streams - max(account.active_streams or 0, ours))
