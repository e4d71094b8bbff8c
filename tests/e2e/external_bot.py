"""The customer's own bot for end-to-end tests: a websockets server on loopback, in a thread of the test
process, speaking AgentStream to the relay bot of a stream server (streams/bots/relay.py)."""

import asyncio
import contextlib
import threading

import websockets

from exotel import protocol
from tests import processes


class ExternalBot:
    """Echoes the caller's audio, doubled; `answer` is what it sends back for each event it gets."""

    def __init__(self) -> None:
        self.port = processes.free_port()
        self.url = f"ws://127.0.0.1:{self.port}/agent"
        self.events: list = []  # every event it got, in order, over all its connections
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._serve(),), daemon=True)

    def answer(self, event) -> list[str]:
        if isinstance(event, protocol.Media):
            return [protocol.media_frame(event.stream_sid, event.payload + event.payload)]
        return []

    def leaves_after(self, event) -> bool:
        """Whether it closes the socket once it has answered `event`."""
        return False

    def of(self, kind) -> list:
        return [event for event in self.events if isinstance(event, kind)]

    async def _handle(self, ws) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for text in ws:
                event = protocol.parse_frame(text)
                self.events.append(event)
                for frame in self.answer(event):
                    await ws.send(frame)
                if self.leaves_after(event):
                    await ws.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with websockets.serve(self._handle, "127.0.0.1", self.port):
            self._ready.set()
            await self._stop.wait()

    def __enter__(self):
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)
