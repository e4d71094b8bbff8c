"""Database work of a stream, done at its two ends only: binding at the handshake and `start`,
and the session's record at the close (and once in between if the caller opts out); and the one
broker message, `announce_start`. Everything here
is synchronous; consumers call it through `database_sync_to_async`, never per media frame.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import logging
import secrets

from django.core import signing
from django.db import transaction
from django.utils import timezone

from campaigns import calls, donotcall, links
from campaigns.models import Call, Campaign
from exotel.protocol import Start
from integrations import outbox
from streams import prompts
from streams.models import Intervention, StreamSession
from streams.recorder import save_track
from streams.runtime import Binding, OptOut, Started, Stream
from tenancy.models import ExotelAccount, Role, Workspace, workspaces_of

log = logging.getLogger(__name__)

TOKEN_MAX_AGE = datetime.timedelta(days=1)  # a call is dialled within seconds of its row being made


# --- the handshake --------------------------------------------------------------------------------

def bind_call(token: str, *, receive_only: bool, authorization: bytes | None) -> Binding | None:
    """The call a stream URL's token names, if it may stream now; None (and a log line) if not."""
    call = Call.objects.select_related("workspace", "campaign", "contact", "variant").filter(token=token).first()
    if call is None:
        log.warning("stream refused: unknown call token")
        return None
    if call.state in Call.FINAL_STATES or call.created_at < timezone.now() - TOKEN_MAX_AGE:
        log.warning("stream refused: call %s is %s (created %s)", call.pk, call.state, call.created_at)
        return None
    if not basic_auth_ok(call.workspace, authorization):
        log.warning("stream refused: call %s without the workspace's stream credentials", call.pk)
        return None
    campaign, contact = call.campaign, call.contact
    accounts = ExotelAccount.objects.filter(workspace_id=call.workspace_id).values_list("account_sid", flat=True)
    return Binding(
        workspace_id=call.workspace_id, call_id=call.pk, campaign_id=campaign.pk, phone=call.phone,
        bot_kind="" if receive_only else call.bot.bot_kind, bot_settings=call.bot.bot_settings or {},
        relay_token=campaign.relay_token,
        variables={**(contact.variables or {}), "name": contact.name, "phone": contact.phone},
        receive_only=receive_only, account_sids=frozenset(accounts),
        machine_detection=campaign.machine_detection != campaign.MachineDetection.OFF, answered_at=call.answered_at,
        on_machine=campaign.on_machine, voicemail_prompt=campaign.voicemail_prompt,
    )


def bind_test(token: str, *, authorization: bytes | None) -> Binding | None:
    """A workspace's echo test endpoint; None if the token is forged or the workspace's secret rotated."""
    workspace = _test_token_workspace(token)
    if workspace is None:
        log.warning("test stream refused: bad token")
        return None
    if not basic_auth_ok(workspace, authorization):
        log.warning("test stream refused: workspace %s without its stream credentials", workspace.pk)
        return None
    return Binding(workspace_id=workspace.pk, bot_kind="echo", **_account_sids(workspace.pk))


def _account_sids(workspace_id: int) -> dict[str, frozenset[str]]:
    """A stream bound to no call may start from the workspace's accounts, or any but another's."""
    accounts = ExotelAccount.objects.values_list("account_sid", flat=True)
    return {"account_sids": frozenset(accounts.filter(workspace_id=workspace_id)),
            "other_account_sids": frozenset(accounts.exclude(workspace_id=workspace_id))}


def basic_auth_ok(workspace: Workspace, authorization: bytes | None) -> bool:
    """True when the workspace wants no stream credentials, or the Authorization header carries them."""
    if not workspace.stream_username:
        return True
    scheme, _, encoded = (authorization or b"").decode("latin1").partition(" ")
    try:
        username, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return scheme.lower() == "basic" and secrets.compare_digest(
        f"{username}:{password}", f"{workspace.stream_username}:{workspace.stream_password}"
    )


# --- the test endpoint ----------------------------------------------------------------------------

def _test_signer(workspace: Workspace) -> signing.Signer:
    # Salted with the webhook secret: rotating it revokes the test URL too, with no column of its own.
    return signing.Signer(salt=f"streams.test.{workspace.webhook_token}")


def test_stream_token(workspace: Workspace) -> str:
    return _test_signer(workspace).sign(str(workspace.pk))


def _test_token_workspace(token: str) -> Workspace | None:
    pk = token.partition(":")[0]
    workspace = Workspace.objects.filter(pk=int(pk)).first() if pk.isdigit() else None
    try:
        return workspace if workspace and _test_signer(workspace).unsign(token) == pk else None
    except signing.BadSignature:
        return None


def test_stream_url(workspace: Workspace) -> str:
    """The workspace's echo test endpoint, usable at once by an applet or any AgentStream client."""
    return links.websocket_url(f"/streams/test/{test_stream_token(workspace)}")


# --- a campaign's test call -----------------------------------------------------------------------
# The campaign's bot on a stream bound to no call: nothing is recorded against a contact, counted in
# the campaign, shown on its live view or put on the do-not-call list. Exotel streams a test call to
# a signed URL (`test_call_url`); the simulator's is played in the operator's browser, which speaks
# Exotel's part of the protocol (`bind_browser_test_call`, static/js/testcall.js).

TEST_CALL_MAX_AGE = datetime.timedelta(minutes=10)  # from the button to the answer


def test_call_binding(campaign: Campaign) -> Binding:
    return Binding(workspace_id=campaign.workspace_id, bot_kind=campaign.bot_kind,
                   bot_settings=campaign.bot_settings or {}, variables={"name": "", "phone": ""},
                   **_account_sids(campaign.workspace_id))


def bind_browser_test_call(campaign_id: int, *, user) -> Binding | None:
    """A test call from the browser of an operator (or above) of the campaign's workspace; None if not."""
    if user is None or not user.is_authenticated:
        return None
    campaign = Campaign.objects.filter(pk=campaign_id, workspace_id__in=workspaces_of(user, at_least=Role.OPERATOR)).first()
    return test_call_binding(campaign) if campaign else None


def _test_call_signer(workspace: Workspace) -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=f"streams.test_call.{workspace.webhook_token}")


def _signed_for(campaign: Campaign, token: str) -> bool:
    try:
        return _test_call_signer(campaign.workspace).unsign(token, max_age=TEST_CALL_MAX_AGE) == str(campaign.pk)
    except signing.BadSignature:  # an expired one too
        return False


def test_call_url(campaign: Campaign) -> str:
    token = _test_call_signer(campaign.workspace).sign(str(campaign.pk))
    return links.websocket_url(f"/streams/test-call/{token}")


def bind_test_call(token: str, *, authorization: bytes | None) -> Binding | None:
    """The campaign a test call's stream URL names, while the URL is fresh; None (and a log line) if not."""
    pk = token.partition(":")[0]
    campaign = Campaign.objects.select_related("workspace").filter(pk=int(pk)).first() if pk.isdigit() and len(pk) < 10 else None
    if campaign is None or not _signed_for(campaign, token):
        log.warning("test call stream refused: bad or expired token")
        return None
    if not basic_auth_ok(campaign.workspace, authorization):
        log.warning("test call stream refused: campaign %s without the workspace's stream credentials", campaign.pk)
        return None
    return test_call_binding(campaign)


# --- start ----------------------------------------------------------------------------------------

def start_session(binding: Binding, start: Start) -> Started:
    """Record the session and load the bot's prompts (`announce_start` tells the dialer, apart)."""
    loaders = {"script": prompts.for_script, "relay": prompts.for_relay}
    loaded = loaders[binding.bot_kind](binding, start.sample_rate) if binding.bot_kind in loaders else {}
    if binding.machine_detection and binding.voicemail_prompt:
        loaded |= prompts.load(binding.workspace_id, {binding.voicemail_prompt}, start.sample_rate)
    session = StreamSession.objects.create(
        workspace_id=binding.workspace_id, call_id=binding.call_id, stream_sid=start.stream_sid,
        direction=StreamSession.Direction.RECEIVE_ONLY if binding.receive_only
        else StreamSession.Direction.BIDIRECTIONAL,
        bot_kind=binding.bot_kind, sample_rate=start.sample_rate,
        custom_parameters=dict(start.custom_parameters), started_at=timezone.now(),
    )
    log.info("stream %s started (call %s, session %s)", start.stream_sid, binding.call_id, session.pk)
    return Started(session_id=session.pk, started_at=session.started_at, prompts=loaded)


def announce_start(call_id: int) -> None:
    """Tell the dialer a call's stream started (`tasks.stream_started`): one attempt, which raises
    when the broker is unreachable. The consumer retries it off the stream's path, so a broker outage
    delays this news and never the call."""
    from campaigns import tasks  # the engine's module; imported late, it imports the dialer

    # One attempt: kombu's default (retry=False) still waits seconds for an unreachable broker.
    tasks.stream_started.apply_async((call_id,), retry=True, retry_policy={"max_retries": 0})


# --- the end --------------------------------------------------------------------------------------

def close_session(stream: Stream) -> None:
    """Record how the stream went, store its recordings, and apply the bot's outcome to the call."""
    if stream.session_id is None:
        if stream.recorder:
            stream.recorder.discard()
        return
    sent, bot = stream.outbox, stream.bot
    fields = {
        "ended_at": timezone.now(), "stop_reason": stream.stop_reason[:30], "close_code": stream.close_code,
        "frames_in": stream.frames_in, "bytes_in": stream.bytes_in, "bad_frames": stream.bad_frames,
        "frames_out": sent.frames_out if sent else 0, "bytes_out": sent.bytes_out if sent else 0,
        "dtmf_digits": stream.dtmf, "marks": stream.marks, "barge_in_ms": stream.barge_in_ms,
        "first_audio_ms": stream.first_audio_ms,
    }
    if bot:
        fields.update(disposition=bot.disposition[:100], variables=bot.variables)
    if stream.recorder:
        try:
            fields.update(_store_recordings(stream))
        except Exception:  # a full disk or an object store's outage: the rest of the record still counts
            log.exception("stream %s: its recordings could not be stored", stream.sid)
    # Few statements and no read of the session: the end of every call pays for them (bench/streams.py). The
    # call's disposition commits with it, so whoever sees the session ended sees the bot's conclusion too.
    call_id = stream.binding.call_id
    with transaction.atomic():
        if call_id is not None:
            # The call's row lock first, as `calls.advance` takes it: a call.ended written meanwhile
            # is seen below and sent with what this close saves (integrations.outbox).
            list(Call.objects.select_for_update().filter(pk=call_id).values_list("pk"))
        StreamSession.objects.filter(pk=stream.session_id).update(**fields)
        if call_id is not None:
            if bot and bot.disposition:
                calls.set_disposition(call_id, bot.disposition[:100])
            if bot and (bot.transcript or bot.summary):
                calls.set_transcript(call_id, bot.transcript, bot.summary)
            if stream.answer_to_first_audio_ms is not None:
                calls.set_first_audio(call_id, stream.answer_to_first_audio_ms)
            outbox.stream_closed(call_id)
    if call_id is not None and stream.opted_out:  # recorded when it happened; again, in case that failed
        record_opt_out(call_id, stream.opted_out)


def _store_recordings(stream: Stream) -> dict[str, str]:
    # The names follow the model's upload_to, from what the row was created with.
    session = StreamSession(workspace_id=stream.binding.workspace_id, started_at=stream.started_at)
    stem, recorder = stream.sid or stream.session_id, stream.recorder
    stored = {"caller_recording": save_track(recorder.caller, session.caller_recording.field.generate_filename(
        session, f"{stem}-caller.wav"))}
    if recorder.bot is not None:
        stored["bot_recording"] = save_track(recorder.bot, session.bot_recording.field.generate_filename(
            session, f"{stem}-bot.wav"))
    return stored


def record_opt_out(call_id: int, opted_out: OptOut) -> None:
    """The caller of this call is on the workspace's do-not-call list from now on (idempotent)."""
    donotcall.opt_out(Call.objects.get(pk=call_id), source=opted_out.source, reason=opted_out.reason)


def record_intervention(stream: Stream, kind: str, *, user_id: int | None, by: str, recording_ms: int | None,
                        text: str = "", step: str = "") -> None:
    """A supervisor's step into the call, as it happened (`streams.supervision`)."""
    Intervention.objects.create(
        workspace_id=stream.binding.workspace_id, call_id=stream.binding.call_id, session_id=stream.session_id,
        kind=kind, user_id=user_id, by=by[:254], text=text[:500], step=step[:100], at=timezone.now(),
        recording_ms=recording_ms,
    )
