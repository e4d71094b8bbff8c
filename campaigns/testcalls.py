"""A campaign's test call: the operator hears its bot before any contact does.

With a real Exotel account, the operator's own phone is dialled as the dialer dials a contact in
Voice AI mode (the account's client, a caller ID of the campaign's pool that may call the number,
the campaign's sample rate and time limit), streamed to a signed URL that runs the campaign's bot
(`streams.services.test_call_url`). There is no Call row: nothing is counted in the campaign,
attempted for a contact or held against the calling rules. The simulator (the demo's account) has
no phone to ring, so its campaigns are tested in the browser instead (static/js/testcall.js).
"""

import logging

import phonenumbers

from campaigns import accounts, dialer, pools
from campaigns.models import Campaign
from exotel import wire
from exotel.errors import ExotelError
from streams import services
from tenancy.models import Exophone

log = logging.getLogger(__name__)


class Refused(Exception):
    """The test call was not placed; the message says why and is safe to show."""


def place_test_call(campaign: Campaign, *, phone: str) -> str:
    """Dial `phone` (E.164) with the campaign's bot; Exotel's call sid, or Refused."""
    exophone = caller_id_for(campaign, phone)
    account = campaign.account
    stream_url = wire.build_stream_url(services.test_call_url(campaign), sample_rate=campaign.sample_rate,
                                       custom_parameters={"campaign": str(campaign.pk), "test_call": "1"})
    try:
        with accounts.client_for(account, timeout=dialer.EXOTEL_TIMEOUT) as client:
            info = client.connect_to_bot(wire.BotCall(
                number=phone, stream_url=stream_url, time_limit=campaign.time_limit,
                caller_id=wire.dialled_number(exophone.number, account.number_form, field_name="CallerId"),
            ))
    except ExotelError as error:
        raise Refused(accounts.explain(error)) from error
    log.info("campaign %s: test call %s placed from %s", campaign.pk, info.sid, exophone.number)
    return info.sid


def caller_id_for(campaign: Campaign, phone: str) -> Exophone:
    """The first number of the campaign's pool that may call `phone` (campaigns.pools' rule)."""
    pool = list(campaign.exophones.all())
    for exophone in pool:
        if pools.may_call(exophone, phone):
            return exophone
    if not pool:
        raise Refused("The campaign has no caller ID to call from.")
    raise Refused(f"None of the campaign's caller IDs may call +{phonenumbers.parse(phone).country_code} numbers.")
