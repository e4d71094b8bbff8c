"""The simulator's wire log: one JSON object per line, flushed as written (nothing without --log).

Every record has `ts` (Unix seconds) and `kind`:

- `request`: an API request received: `id`, `method`, `path`, `query`, `account_sid`, `body`
  (form fields or JSON; a repeated form key becomes a list). Credentials are never logged.
- `response`: its answer: `id`, `status`, `fault` (the fault kind applied, if any).
- `callback`: an HTTP request the simulator sent: `type` ("status" | "passthru" | "leg_event" |
  "stream_url"), `method`, `url`, `attempt`, `body` (or query), `headers` (leg events), and
  `status` or `error`.
- `call`: a call's state change: `call_sid`, `status`, plus details.
- `ws`: `action` "open" | "close" | "connect_failed" | "refused" (custom parameters over the
  limits), `call_sid`, `stream_sid`, `url`, `code`, `by`, `reason`.
- `frame`: `dir` "sent" (to the bot) or "received" (from the bot), `call_sid`, `stream_sid`,
  `event`, `t` (seconds since the socket opened), `size` (characters of the frame), and for media
  `bytes` (PCM bytes, never the payload), for marks `name`, for dtmf `digit`, for stop `reason`.
- `violation`: `call_sid`, `reason`, `code` (the close code strict mode would use / used).
- `chunk_warning`: a bot chunk that breaks the size rules, played degraded (not in --strict, where
  it is a violation): `call_sid`, `reason`, `effects` (gap, jitter, or timed out and not played).
- `limit`: the stream reached a limit: `limit` "session" (the 60-minute maximum), `seconds`.
- `clear`: the bot's `clear`: `dropped_chunks`, `dropped_marks` (names).
- `control`: a control endpoint changed flows or faults.
- `say`: Legs greeting: `leg_sid`, `action` "start" | "stop" | "interrupted" | "completed", `text`.
- `transfer`: a flow's Transfer applet rang a number: `call_sid`, `number`, `outcome` ("answer",
  "no-answer", "busy", "failed").
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import IO, Any


class WireLog:
    def __init__(self, path: str | Path | None) -> None:
        self._out: IO[str] | None = open(path, "a", buffering=1) if path else None  # noqa: SIM115

    def write(self, kind: str, **fields: Any) -> None:
        if self._out is None:
            return
        record = {"ts": round(time.time(), 6), "kind": kind, **fields}
        self._out.write(json.dumps(record, default=str, separators=(",", ":")) + "\n")

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
