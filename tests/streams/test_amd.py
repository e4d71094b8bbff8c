"""The answering-machine classifier on the simulator's callers: people, machines with and without a
beep, silence, at every stream rate, fed in the chunk sizes Exotel sends."""

import math
import random

import numpy as np
import pytest

from exotel.simulator.caller import default_script, machine_script, render
from exotel.simulator.config import Machine, ScriptStep
from streams import amd


def classify(script, *, rate=8000, chunk_ms=100, seconds=12.0, seed=0):
    audio = render(script, rate, seed, -20.0)
    audio += bytes(int(seconds * rate * 2) - len(audio))
    classifier = amd.Classifier(rate)
    chunk = rate * 2 * chunk_ms // 1000
    for offset in range(0, len(audio), chunk):
        classifier.feed(audio[offset:offset + chunk])
        if classifier.done:
            break
    return classifier


@pytest.mark.parametrize("seed", range(20))
def test_it_takes_the_simulators_people_for_people(seed):
    classifier = classify(default_script(random.Random(seed), 10.0), seed=seed)
    assert classifier.verdict.result == amd.HUMAN
    assert classifier.verdict.reason == "short-greeting"


@pytest.mark.parametrize("seed", range(20))
def test_it_takes_a_long_greeting_for_a_machine_within_its_greeting(seed):
    script = machine_script(Machine(greeting_seconds=4.0, beep=False), random.Random(seed))
    classifier = classify(script, seed=seed)
    assert classifier.verdict.result == amd.MACHINE
    assert classifier.verdict.reason == "long-greeting"
    assert classifier.verdict.at_ms <= 3500
    # No beep: the message waits for the quiet after the greeting.
    greeting_end_ms = (script[-1].at + script[-1].speech) * 1000
    assert classifier.ready_for_message
    assert 0 <= classifier.ms - greeting_end_ms - amd.GREETING_END_MS <= 2 * amd.FRAME_MS


def test_a_short_greeting_ending_in_a_beep_is_a_machine_and_the_message_starts_after_the_beep():
    script = (ScriptStep(at=0.2, speech=0.8), ScriptStep(at=1.05, speech=0.5, sound="beep"))
    classifier = classify(script)
    assert classifier.verdict == amd.Verdict(amd.MACHINE, classifier.verdict.at_ms, "beep")
    assert 1200 <= classifier.verdict.at_ms <= 1400
    assert classifier.ready_for_message and 1550 <= classifier.ms <= 1650


def test_after_a_long_greeting_the_beep_ends_the_wait():
    classifier = classify(machine_script(Machine(greeting_seconds=3.0, beep=True), random.Random(1)))
    assert classifier.verdict.reason == "long-greeting"
    beep_end = machine_script(Machine(greeting_seconds=3.0, beep=True), random.Random(1))[-1]
    assert classifier.ready_for_message
    assert abs(classifier.ms - (beep_end.at + beep_end.speech) * 1000) <= 2 * amd.FRAME_MS


@pytest.mark.parametrize("rate", [8000, 16000, 24000])
@pytest.mark.parametrize("chunk_ms", [20, 100, 330])
def test_it_decides_alike_at_every_rate_and_chunk_size(rate, chunk_ms):
    person = classify(default_script(random.Random(3), 10.0), rate=rate, chunk_ms=chunk_ms)
    machine = classify(machine_script(Machine(), random.Random(3)), rate=rate, chunk_ms=chunk_ms)
    assert (person.verdict.result, machine.verdict.result) == (amd.HUMAN, amd.MACHINE)


def test_a_voice_is_no_beep_even_when_it_hums_one_note():
    # The simulator's voiced tone: a steady fundamental with harmonics, the purest a voice gets.
    classifier = classify((ScriptStep(at=0.1, speech=1.5),))
    assert classifier.verdict.result == amd.HUMAN


def test_silence_is_no_decision_at_the_end_of_the_window():
    classifier = classify(())
    assert classifier.verdict == amd.Verdict(amd.UNKNOWN, amd.WINDOW_MS, "no-decision")


def test_a_quiet_line_hiss_is_not_speech():
    rng = np.random.default_rng(0)
    hiss = (rng.standard_normal(8000 * 7) * 32768 * 10 ** (-55 / 20)).astype("<i2").tobytes()
    classifier = amd.Classifier(8000)
    classifier.feed(hiss)
    assert classifier.verdict.result == amd.UNKNOWN


def test_a_beep_at_any_common_pitch_is_heard():
    for hz in (440, 850, 1000, 1400, 2100):
        t = np.arange(int(0.4 * 8000)) / 8000
        beep = (np.sin(2 * math.pi * hz * t) * 8000).astype("<i2").tobytes()
        classifier = amd.Classifier(8000)
        classifier.feed(bytes(1600) + beep + bytes(3200))
        assert classifier.verdict.reason == "beep", hz


def test_odd_byte_counts_and_empty_chunks_are_taken_in_stride():
    classifier = amd.Classifier(8000)
    assert classifier.feed(b"") is None
    assert classifier.feed(b"\x01") is None
    assert classifier.ms == 0


def test_told_by_exotel_it_waits_for_the_end_of_a_greeting_it_had_not_judged_yet():
    script = machine_script(Machine(greeting_seconds=2.0, beep=True), random.Random(2))
    audio = render(script, 8000, 0, -20.0) + bytes(16000 * 3)
    classifier = amd.Classifier(8000)
    classifier.feed(audio[:1600 * 5])  # half a second: nothing decided yet
    classifier.told_machine()
    for offset in range(1600 * 5, len(audio), 1600):
        classifier.feed(audio[offset:offset + 1600])
        if classifier.done:
            break
    beep = script[-1]
    assert classifier.ready_for_message
    assert abs(classifier.ms - (beep.at + beep.speech) * 1000) <= 2 * amd.FRAME_MS


def test_a_stream_that_opens_in_the_greetings_last_word_waits_for_the_beep():
    # The stream opened 3.3 s after the answer: a word's end, a pause a person might make, then the beep.
    script = (ScriptStep(at=0.0, speech=0.2), ScriptStep(at=0.65, speech=0.5, sound="beep"))
    classifier = classify(script)
    assert (classifier.verdict.result, classifier.verdict.reason) == (amd.MACHINE, "beep")


def test_a_person_joined_mid_word_is_judged_by_the_next_word():
    script = (ScriptStep(at=0.0, speech=0.5), ScriptStep(at=1.3, speech=0.8))
    classifier = classify(script)
    assert classifier.verdict == amd.Verdict(amd.HUMAN, classifier.verdict.at_ms, "short-greeting")
    assert classifier.verdict.at_ms >= 2100 + amd.PAUSE_MS - amd.FRAME_MS


def test_a_long_greeting_joined_late_is_still_long():
    classifier = classify((ScriptStep(at=0.0, speech=0.4), ScriptStep(at=0.9, speech=3.0)))
    assert classifier.verdict.reason == "long-greeting"


def test_told_by_exotel_on_a_line_quiet_from_the_start_it_leaves_the_message_after_a_moment():
    # The stream opened after the greeting and its beep: the machine is recording already.
    classifier = amd.Classifier(8000, joined_after_ms=6000)
    classifier.told_machine()
    classifier.feed(bytes(16000 * 2))
    assert classifier.ready_for_message and classifier.ms == amd.GREETING_END_MS
