"""Bots a campaign can run on its calls: `echo`, `script` and `relay` (see each module).

`make_bot(stream)` picks the binding's bot; a receive-only stream has none.
"""

from __future__ import annotations

from streams.bots.echo import EchoBot
from streams.bots.relay import RelayBot
from streams.bots.script import ScriptBot
from streams.runtime import Bot, Stream

BOTS: dict[str, type[Bot]] = {"echo": EchoBot, "script": ScriptBot, "relay": RelayBot}


def make_bot(stream: Stream) -> Bot | None:
    kind = stream.binding.bot_kind
    return BOTS[kind](stream) if kind else None
