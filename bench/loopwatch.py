"""The web server (`config.server`) with a watch on its event loop, for benchmarks.

    python -m bench.loopwatch REPORT.jsonl [config.server's arguments]

It times every callback the loop runs, in wall-clock and in CPU time (a stall is one callback that
holds the loop; the code it ran is named, so a stall is attributed, and its CPU time tells our work
from the time the machine's other processes took meanwhile), times garbage collections (they stall whatever callback is
running), and probes the loop's lag (how late a 10 ms timer fires: callbacks, I/O polling and
everything else together). On SIGUSR1 it appends the figures since the last report to REPORT as a
JSON line and starts afresh; the bench sends it after each load run. Timing each callback costs
one to two microseconds, about 1% of the server's CPU at the bench's loads.
"""

from config.server import StreamServerCommand  # isort:skip  (first: Twisted's asyncio reactor)

import asyncio
import gc
import json
import signal
import sys
import time
from asyncio import events

from twisted.internet import reactor

STALL_MS = 20.0
PROBE_SECONDS = 0.01
KEPT_STALLS = 5


def describe(callback) -> str:
    """The callback's code; for a task's step, its coroutines down to where they stopped after it."""
    task = getattr(callback, "__self__", None)
    if not isinstance(task, asyncio.Task):
        return repr(callback)
    coro, frames = task.get_coro(), []
    while coro is not None and hasattr(coro, "cr_code"):
        frames.append(f"{coro.cr_code.co_qualname}:{coro.cr_frame.f_lineno if coro.cr_frame else 'done'}")
        coro = coro.cr_await
    return "task " + " > ".join(frames)


class Watch:
    def __init__(self, report: str) -> None:
        self.report = report
        self._reset()

    def _reset(self) -> None:
        self.callbacks = 0
        self.stalls: list[tuple[float, float, float, str]] = []  # (CPU ms, ms, GC ms, callback) over STALL_MS
        self.gc_pauses: list[float] = []  # ms, over STALL_MS
        self.gc_ms = 0.0  # all collections so far, in any thread (they hold the GIL: the loop waits too)
        self.lags: list[float] = []  # ms late, one per probe

    def install(self) -> None:
        run = events.Handle._run
        watch = self

        def timed_run(handle) -> None:
            callback, gc_before = handle._callback, watch.gc_ms
            started, cpu_started = time.perf_counter(), time.thread_time()
            run(handle)
            watch.callbacks += 1
            ms = (time.perf_counter() - started) * 1000
            if ms > STALL_MS:
                cpu_ms = (time.thread_time() - cpu_started) * 1000
                watch.stalls.append((cpu_ms, ms, watch.gc_ms - gc_before, describe(callback)[:300]))

        events.Handle._run = timed_run
        gc.callbacks.append(self._on_gc)
        loop = asyncio.get_event_loop()
        loop.add_signal_handler(signal.SIGUSR1, self.write)
        self._probe(loop, loop.time())

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            ms = (time.perf_counter() - self._gc_started) * 1000
            self.gc_ms += ms
            if ms > STALL_MS:
                self.gc_pauses.append(ms)

    def _probe(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        now = loop.time()
        self.lags.append(max(0.0, now - due) * 1000)
        loop.call_at(now + PROBE_SECONDS, self._probe, loop, now + PROBE_SECONDS)

    def write(self) -> None:
        lags = sorted(self.lags) or [0.0]
        figures = {
            "stall_ms": STALL_MS,
            "callbacks": self.callbacks,
            "lag_ms": {"p50": lags[len(lags) // 2], "p99": lags[int(len(lags) * 0.99)], "max": lags[-1]},
            "lags_over_stall": sum(lag > STALL_MS for lag in lags),
            "stalls": len(self.stalls),
            # Wall time less CPU time is time the machine gave to other processes mid-callback; CPU time
            # less GC time is the callback's own code.
            "cpu_stalls": sum(cpu_ms > STALL_MS for cpu_ms, _, _, _ in self.stalls),
            "code_stalls": sum(cpu_ms - gc_ms > STALL_MS for cpu_ms, _, gc_ms, _ in self.stalls),
            "worst_stalls": [{"cpu_ms": round(cpu_ms, 1), "ms": round(ms, 1), "gc_ms": round(gc_ms, 1), "callback": what}
                             for cpu_ms, ms, gc_ms, what in sorted(self.stalls)[-KEPT_STALLS:]],
            "gc_pauses_over_stall": len(self.gc_pauses),
            "gc_max_ms": round(max(self.gc_pauses, default=0.0), 1),
        }
        with open(self.report, "a") as out:
            out.write(json.dumps(figures) + "\n")
        self._reset()


if __name__ == "__main__":
    watch = Watch(sys.argv[1])
    reactor.callWhenRunning(watch.install)
    StreamServerCommand().run(sys.argv[2:])
