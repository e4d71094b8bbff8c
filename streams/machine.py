"""A stream's ear for answering machines, and what it does on one (issue 14; the decision's rules are
`campaigns.machines`).

While the call's decision is not in, every media frame of the callee goes to `streams.amd`'s
classifier (in memory, on the media path), and the cache is asked a few times a second whether
Exotel's verdict, applied by the webhook applier in another process, has decided it. The first
definite verdict of either is the call's decision. On a person the bot simply goes on. On a machine
the bot is muted and its pending audio cleared, then:
- hang up: the disposition `machine` is stored, then the socket closed (the call's end then settles
  the contact as a no-answer);
- leave a message: the classifier listens on until the greeting or its beep is over, the campaign's
  prompt is played, and once its mark comes back the disposition `voicemail_left` is stored and the
  call hung up. A caller that hangs up first leaves no message (and the machine counts as no answer).
Dispositions are stored before the socket closes, so the call's end, applied by another process,
always finds them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from channels.db import database_sync_to_async
from django.core.cache import cache
from django.utils import timezone

from campaigns import calls, machines
from campaigns.models import Campaign
from exotel.audio import resample
from exotel.protocol import CloseCode
from streams import amd

if TYPE_CHECKING:
    from streams.runtime import Stream

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25  # how often the cache is asked for Exotel's verdict
EXOTEL_WAIT_SECONDS = 30.0  # after this, a verdict would come too late to matter
MARK = "voicemail"
MARK_GRACE_SECONDS = 5.0


def in_a_thread(work):
    return database_sync_to_async(work, thread_sensitive=False)


class MachineWatch:
    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.call_id = stream.binding.call_id
        answered_at = stream.binding.answered_at
        # Opened late after the answer, the stream may hear only a greeting's tail (streams.amd).
        late_ms = (timezone.now() - answered_at).total_seconds() * 1000 if answered_at else 0
        self.classifier = amd.Classifier(stream.rate, joined_after_ms=int(late_ms))
        self.decision = ""
        self._judged = False
        self._ready = asyncio.Event()
        self._mark_back = asyncio.Event()
        stream.spawn(self._watch_exotel())

    @property
    def listening(self) -> bool:
        return not self.classifier.done

    def hear(self, pcm: bytes) -> None:
        """The callee's audio (the media path: no I/O here)."""
        verdict = self.classifier.feed(pcm)
        if verdict and not self._judged:
            self._judged = True
            self.stream.spawn(self._audio_verdict(verdict))
        if self.classifier.ready_for_message:
            self._ready.set()

    def mark_returned(self, name: str) -> bool:
        if name != MARK:
            return False
        self._mark_back.set()
        return True

    async def _audio_verdict(self, verdict: amd.Verdict) -> None:
        decision = await in_a_thread(machines.record_verdict)(
            self.call_id, source=machines.AUDIO, result=verdict.result, at=timezone.now(), reason=verdict.reason)
        await self.stream.feed.event("amd", f"audio: {verdict.result} ({verdict.reason}, {verdict.at_ms} ms)")
        await self._act(decision)

    async def _watch_exotel(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + EXOTEL_WAIT_SECONDS
        while not self.decision and loop.time() < deadline:
            try:
                decision = await cache.aget(machines.decision_key(self.call_id))
            except Exception as error:  # the cache is down: the ear decides alone
                log.info("stream %s: no verdict from the cache: %s", self.stream.sid, error)
                decision = None
            if decision:
                await self._act(decision)
                return
            await asyncio.sleep(POLL_SECONDS)

    async def _act(self, decision: str) -> None:
        if self.decision or decision not in (machines.HUMAN, machines.MACHINE):
            return
        self.decision = decision
        if decision == machines.HUMAN:
            return
        await self.stream.mute()
        binding = self.stream.binding
        if binding.on_machine == Campaign.OnMachine.LEAVE_MESSAGE:
            self.classifier.told_machine()
            await self._leave_message(binding.voicemail_prompt)
        else:
            await self._hang_up(machines.MACHINE_HUNG_UP, "machine")

    async def _leave_message(self, prompt: str) -> None:
        if self.classifier.ready_for_message:
            self._ready.set()
        await self._ready.wait()
        if prompt not in self.stream.prompts:
            log.warning("stream %s: no message prompt %r; hanging up on the machine", self.stream.sid, prompt)
            await self._hang_up(machines.MACHINE_HUNG_UP, "machine")
            return
        pcm, rate = self.stream.prompts[prompt]
        await self.stream.feed.event("say", prompt)
        await self.stream.outbox.play(resample(pcm, rate, self.stream.rate))
        await self.stream.outbox.mark(MARK)
        seconds = len(pcm) / (2 * rate)
        try:
            await asyncio.wait_for(self._mark_back.wait(), seconds + MARK_GRACE_SECONDS)
        except TimeoutError:
            log.info("stream %s: the message's mark did not come back; hanging up all the same", self.stream.sid)
        await self._hang_up(machines.VOICEMAIL_LEFT, "voicemail_left")

    async def _hang_up(self, disposition: str, reason: str) -> None:
        if self.stream.bot:
            self.stream.bot.disposition = disposition
        await in_a_thread(calls.set_disposition)(self.call_id, disposition)
        await self.stream.feed.event("hangup", reason)
        await self.stream.end(reason, CloseCode.NORMAL)

