"""The simulated caller: what it says and when, rendered as 16-bit PCM, deterministic from the seed.

Speech is stood in for by bursts at speech level (`speech_dbfs`, -20 dBFS by default): a voiced
tone (a 120-240 Hz fundamental with harmonics, modulated at a syllable rate of 4 Hz) or noise with
the same envelope. Between bursts the line is digital silence. Without a script the caller speaks
bursts of 0.6-1.6 s separated by 0.4-1.2 s of silence until it hangs up. An answering machine
(`NumberPlan.machine`) plays its greeting as words of 0.25-0.7 s with pauses of 0.05-0.2 s, then,
0.3 s after it, a 0.5 s beep (a pure 1 kHz tone) if it has one.
"""

from __future__ import annotations

import math
import random

import numpy as np

from exotel.simulator.config import Machine, NumberPlan, ScriptStep

BEEP_HZ = 1000.0
BEEP_SECONDS = 0.5


def rng_for(seed: int, number: str) -> random.Random:
    """One generator per (seed, number): a number's fate does not depend on other calls."""
    return random.Random(f"{seed}:{number}")


def default_script(rng: random.Random, seconds: float) -> tuple[ScriptStep, ...]:
    steps, t = [], 0.3 + rng.uniform(0, 0.4)
    while t < seconds - 0.5:
        length = min(rng.uniform(0.6, 1.6), seconds - t)
        steps.append(ScriptStep(at=round(t, 3), speech=round(length, 3),
                                sound="tone" if rng.random() < 0.7 else "noise"))
        t += length + rng.uniform(0.4, 1.2)
    return tuple(steps)


def machine_script(machine: Machine, rng: random.Random) -> tuple[ScriptStep, ...]:
    steps, t = [], 0.2
    while t < machine.greeting_seconds:
        length = min(rng.uniform(0.25, 0.7), machine.greeting_seconds - t)
        steps.append(ScriptStep(at=round(t, 3), speech=round(length, 3)))
        t += length + rng.uniform(0.05, 0.2)
    if machine.beep:
        steps.append(ScriptStep(at=round(t + 0.3, 3), speech=BEEP_SECONDS, sound="beep"))
    return tuple(steps)


def script_for(plan: NumberPlan, rng: random.Random) -> tuple[ScriptStep, ...]:
    if plan.script is not None:
        return plan.script
    if plan.machine is not None:
        return machine_script(plan.machine, rng)
    return default_script(rng, plan.hangup_after if plan.hangup_after is not None else 10.0)


def _burst(step: ScriptStep, rate: int, level: float, rng: np.random.Generator) -> np.ndarray:
    n = int(step.speech * rate)
    t = np.arange(n) / rate
    if step.sound == "beep":
        return np.sin(2 * math.pi * BEEP_HZ * t) * level * math.sqrt(2)  # a steady tone at the speech level
    envelope = 0.55 + 0.45 * np.sin(2 * math.pi * 4.0 * t) ** 2
    if step.sound == "noise":
        signal = rng.standard_normal(n)
    else:
        f0 = float(rng.uniform(120, 240))
        signal = sum(np.sin(2 * math.pi * f0 * k * t) / k for k in range(1, 6))
    signal = signal * envelope
    rms = float(np.sqrt(np.mean(signal ** 2))) or 1.0
    return signal * (level / rms)


def render(script: tuple[ScriptStep, ...], rate: int, seed: int, speech_dbfs: float) -> bytes:
    """The caller's whole side as PCM from the answer on; silence after the last burst."""
    speech = [s for s in script if s.speech > 0]
    end = max((s.at + s.speech for s in speech), default=0.0)
    samples = np.zeros(int(math.ceil(end * rate)), dtype=np.float64)
    level = 32768 * 10 ** (speech_dbfs / 20)
    noise = np.random.default_rng(seed)
    for step in speech:
        burst = _burst(step, rate, level, noise)
        start = int(step.at * rate)
        samples[start:start + len(burst)] += burst[: len(samples) - start]
    return np.clip(samples, -32768, 32767).astype("<i2").tobytes()
