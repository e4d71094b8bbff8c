"""Answering-machine detection: latency and accuracy over a simulator population.

    python bench/amd.py [--config sim.json] [--people 200] [--machines 200] [--lag-ms 0,500,1500]

Each callee of the population (the simulator's config: per-number `machine` plans with their
greeting, beep and Exotel verdict; without --config a mixed one is generated: greetings of 2-9 s,
three in four with a beep, Exotel's verdict after 1-5 s or never, one person in twenty misjudged by
Exotel) is rendered exactly as the simulator streams it (exotel.simulator.caller) and fed to
`streams.amd` in 100 ms frames from `lag` ms after the answer (a stream opens a moment after it).
The call's decision is the first definite verdict of the two sources, as campaigns.machines takes
it. Printed: accuracy and latency from the answer (median, p90) per source and combined, and the
classifier's CPU per second of audio. Pure computation on the simulator's audio: it measures the
decision rules, not the processes (tests/e2e/test_machines.py runs those).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exotel.simulator.caller import render, rng_for, script_for  # noqa: E402
from exotel.simulator.config import SimConfig, parse_config  # noqa: E402
from streams import amd  # noqa: E402

FRAME_BYTES = 1600  # 100 ms at 8 kHz, the simulator's frame


def generated(people: int, machines: int, seed: int) -> SimConfig:
    rng = random.Random(seed)
    numbers = {}
    for i in range(machines):
        verdict_after = rng.choice([None, *[rng.uniform(1, 5) for _ in range(4)]])
        numbers[f"+9195{i:08d}"] = {"hangup_after": 30, "machine": {
            "greeting_seconds": round(rng.uniform(2, 9), 2), "beep": rng.random() < 0.75,
            "amd_result": "" if verdict_after is None else "machine", "amd_delay": verdict_after or 0}}
    for i in range(people):
        wrong = rng.random() < 0.05
        numbers[f"+9196{i:08d}"] = {"hangup_after": 10, "amd_result": "machine" if wrong else "human",
                                    "amd_delay": round(rng.uniform(0.5, 3), 2)}
    return parse_config({"default": {"outcome": "answer"}, "numbers": numbers})


def ear(audio: bytes, lag_ms: int) -> tuple[amd.Verdict | None, float]:
    """The classifier's verdict on the audio from `lag_ms` on, and the CPU seconds it took."""
    classifier = amd.Classifier(8000, joined_after_ms=lag_ms)
    audio = audio[lag_ms * 16:]
    started = time.process_time()
    for offset in range(0, len(audio), FRAME_BYTES):
        if classifier.feed(audio[offset:offset + FRAME_BYTES].ljust(FRAME_BYTES, b"\0")) is not None:
            break
    return classifier.verdict, time.process_time() - started


def run(config: SimConfig, lag_ms: int, seed: int) -> dict:
    rows, cpu, audio_seconds = [], 0.0, 0.0
    for number, plan in config.numbers.items():
        truth = "machine" if plan.machine else "human"
        audio = render(script_for(plan, rng_for(seed, number)), 8000, seed, config.speech_dbfs)
        audio += bytes(16000 * 8)  # silence after the script, as the simulator streams it
        verdict, spent = ear(audio, lag_ms)
        cpu += spent
        audio_seconds += (verdict.at_ms if verdict else 0) / 1000
        heard = (verdict.result, lag_ms + verdict.at_ms) if verdict and verdict.result != "unknown" else None
        told = (plan.amd_result, plan.amd_delay * 1000) if plan.amd_result in ("human", "machine") else None
        decided = min([v for v in (heard, told) if v], key=lambda v: v[1], default=None)
        rows.append((truth, heard, told, decided))
    return {"rows": rows, "cpu_per_audio_second": cpu / audio_seconds if audio_seconds else 0.0}


def summary(rows, pick) -> str:
    judged = [(row[0], pick(row)) for row in rows]
    answered = [(truth, v) for truth, v in judged if v]
    right = sum(1 for truth, v in answered if v[0] == truth)
    machines = [(truth, v) for truth, v in answered if truth == "machine" and v[0] == "machine"]
    latencies = sorted(v[1] for _, v in machines)
    missed = sum(1 for truth, v in judged if truth == "machine" and (not v or v[0] != "machine"))
    people_lost = sum(1 for truth, v in judged if truth == "human" and v and v[0] == "machine")
    p90 = latencies[int(0.9 * (len(latencies) - 1))] if latencies else 0
    return (f"decided {len(answered)}/{len(judged)}, right {right}/{len(answered)}; machines caught "
            f"{len(machines)} (missed {missed}), people taken for machines {people_lost}; latency on machines "
            f"median {statistics.median(latencies) if latencies else 0:.0f} ms, p90 {p90:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="a simulator config (its numbers are the population)")
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--machines", type=int, default=200)
    parser.add_argument("--lag-ms", default="0,500,1500", help="stream start after the answer, comma-separated")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    config = (parse_config(json.loads(Path(args.config).read_text())) if args.config
              else generated(args.people, args.machines, args.seed))
    print(f"population: {len(config.numbers)} numbers, "
          f"{sum(1 for p in config.numbers.values() if p.machine)} machines")
    for lag in (int(x) for x in args.lag_ms.split(",")):
        result = run(config, lag, args.seed)
        rows = result["rows"]
        print(f"stream opens {lag} ms after the answer; classifier CPU "
              f"{result['cpu_per_audio_second'] * 1000:.2f} ms per second of audio")
        print(f"  audio only : {summary(rows, lambda r: r[1])}")
        print(f"  Exotel only: {summary(rows, lambda r: r[2])}")
        print(f"  first of both (the call's decision): {summary(rows, lambda r: r[3])}")


if __name__ == "__main__":
    main()
