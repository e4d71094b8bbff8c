"""Answering-machine detection from the first seconds of the callee's audio: pure signal processing,
no Django, cheap enough for the media path (one small FFT per 40 ms, and only until it has decided).

A person who picks up says something short ("Hello?") and waits; a machine plays a long greeting
with only short pauses between words, and often ends it with a beep. So, over 40 ms frames:

- speech is a frame louder than `SPEECH_DBFS`; an utterance runs from its first loud frame until
  `PAUSE_MS` of quiet; one shorter than `MIN_UTTERANCE_MS` (a click, the end of a word) is ignored;
- a first utterance that ends before `GREETING_MS` is a person (`HUMAN`), unless it was already
  under way when the stream opened (a stream opens a moment after the answer, a greeting may be
  half over, `joined_after_ms` says by how much when it is known): its length is then unknown, and
  the next utterance is judged instead;
- an utterance that runs for `GREETING_MS` is a machine (`MACHINE`);
- a beep is a machine too: `BEEP_MS` of frames whose energy sits in one narrow band (a pure tone
  between 350 and 3000 Hz; a voice's harmonics spread it, and its fundamental lies below 350 Hz);
- nothing decided after `WINDOW_MS` (silence, a line too noisy to tell) is `UNKNOWN`, and the bot
  goes on as with a person.

Once it says machine it keeps listening for the moment a message may be left (`ready_for_message`):
the end of a beep, or `GREETING_END_MS` of quiet (after the greeting, or since the stream opened). Times are audio time (the
samples fed so far), so tests and the simulator see the same decisions at any load.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HUMAN, MACHINE, UNKNOWN = "human", "machine", "unknown"
FRAME_MS = 40
SPEECH_DBFS = -40.0
PAUSE_MS = 360
MIN_UTTERANCE_MS = 200
GREETING_MS = 1800  # Asterisk's AMD() takes 1500 ms of greeting for a machine; people here say up to 1.6 s
WINDOW_MS = 6000
BEEP_MS = 200
BEEP_BAND_HZ = (350.0, 3000.0)
BEEP_PURITY = 0.8  # share of a frame's energy in the peak's three bins
JOINED_LATE_MS = 1000  # a stream opened this long after the answer may hear any part of a greeting
GREETING_END_MS = 1200
MESSAGE_WAIT_MS = 20000  # a greeting that never ends: leave the message anyway


@dataclass(frozen=True)
class Verdict:
    result: str  # HUMAN, MACHINE or UNKNOWN
    at_ms: int  # audio time of the decision
    reason: str  # "short-greeting", "long-greeting", "beep", "no-decision"


class Classifier:
    """Feed caller PCM (16-bit little-endian mono at `rate`) in any chunk sizes; read `verdict`."""

    def __init__(self, rate: int = 8000, *, joined_after_ms: int = 0) -> None:
        self.rate = rate
        self.frame = rate * FRAME_MS // 1000
        self._window = np.hanning(self.frame)
        self._freqs = np.fft.rfftfreq(self.frame, 1 / rate)
        self._pending = np.zeros(0, dtype=np.int16)
        self.ms = 0
        self.verdict: Verdict | None = None
        self.ready_for_message = False
        self._quiet_ms = self._beep_ms = 0
        self._onset_ms: int | None = None  # the current utterance's first loud frame (its start)
        self._heard_beep = False
        self._clipped = joined_after_ms >= JOINED_LATE_MS  # the first utterance began before the stream did
        self._machine_since_ms: int | None = None  # when it knew (itself, or told by Exotel)

    def feed(self, pcm: bytes) -> Verdict | None:
        """Consume audio; returns the verdict once there is one (then the same one on every call)."""
        samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2")
        self._pending = np.concatenate([self._pending, samples]) if self._pending.size else samples
        while self._pending.size >= self.frame and not self.ready_for_message:
            frame, self._pending = self._pending[: self.frame], self._pending[self.frame:]
            self._step(frame.astype(np.float64))
        return self.verdict

    @property
    def done(self) -> bool:
        """Nothing more to learn: a person, no decision, or a machine ready for the message."""
        if self._machine_since_ms is not None:
            return self.ready_for_message
        return self.verdict is not None

    def told_machine(self) -> None:
        """Another source (Exotel) says it is a machine: listen on for the moment to leave a message."""
        if self._machine_since_ms is None:
            self._machine_since_ms = self.ms

    def _step(self, frame: np.ndarray) -> None:
        self.ms += FRAME_MS
        rms = float(np.sqrt(np.mean(frame ** 2)))
        loud = rms > 0 and 20 * np.log10(rms / 32768) > SPEECH_DBFS
        beep = loud and self._is_tone(frame)
        self._beep_ms = self._beep_ms + FRAME_MS if beep else 0
        if self._beep_ms >= BEEP_MS:
            self._heard_beep = True
            self._decide(MACHINE, "beep")
        if loud:
            self._clipped = self._clipped or self.ms == FRAME_MS
            if self._onset_ms is None:
                self._onset_ms = self.ms - FRAME_MS
            self._quiet_ms = 0
        else:
            self._quiet_ms += FRAME_MS
        if self._machine_since_ms is not None:
            self._watch_greeting_end(beep)
        elif self.verdict is None:
            self._judge()

    def _judge(self) -> None:
        length = self.ms - self._quiet_ms - self._onset_ms if self._onset_ms is not None else 0
        if length >= GREETING_MS:
            self._decide(MACHINE, "long-greeting")
        elif self._onset_ms is not None and self._quiet_ms >= PAUSE_MS:
            if self._clipped or length < MIN_UTTERANCE_MS:  # of unknown length, or no word: wait for the next
                self._clipped, self._onset_ms = False, None
            else:
                self._decide(HUMAN, "short-greeting")
        elif self.ms >= WINDOW_MS:
            self._decide(UNKNOWN, "no-decision")

    def _watch_greeting_end(self, beep: bool) -> None:
        beep_over = self._heard_beep and not beep
        # Quiet from the start counts too: a stream that opened after the greeting hears the recording.
        greeting_over = self._quiet_ms >= GREETING_END_MS
        self.ready_for_message = (beep_over or greeting_over
                                  or self.ms - self._machine_since_ms >= MESSAGE_WAIT_MS)

    def _decide(self, result: str, reason: str) -> None:
        if self.verdict is None:
            self.verdict = Verdict(result, self.ms, reason)
            if result == MACHINE:
                self._machine_since_ms = self.ms

    def _is_tone(self, frame: np.ndarray) -> bool:
        power = np.abs(np.fft.rfft(frame * self._window)) ** 2
        peak = int(np.argmax(power))
        if not BEEP_BAND_HZ[0] <= self._freqs[peak] <= BEEP_BAND_HZ[1]:
            return False
        total = float(power.sum())
        return total > 0 and float(power[max(peak - 1, 0): peak + 2].sum()) / total >= BEEP_PURITY
