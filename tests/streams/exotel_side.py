"""Exotel's side of a stream in consumer tests: frames built by exotel.protocol, sent through
Channels' WebsocketCommunicator against the real ASGI application."""

import json
import math
import struct

from channels.testing import WebsocketCommunicator

from config.asgi import application
from exotel import protocol
from exotel.audio import pcm_to_wav


def tone(ms: int, rate: int = 8000, *, level: float = 0.5, hz: int = 440) -> bytes:
    count = rate * ms // 1000
    return struct.pack(f"<{count}h", *(int(level * 32767 * math.sin(2 * math.pi * hz * i / rate)) for i in range(count)))


def silence(ms: int, rate: int = 8000) -> bytes:
    return bytes(rate * ms // 1000 * 2)


def wav(ms: int, rate: int = 16000) -> bytes:
    return pcm_to_wav(tone(ms, rate, level=0.3), rate)


class Exotel:
    """One stream as Exotel plays it."""

    def __init__(self, path: str, *, headers=None, sid: str = "MZ1", account_sid: str = "acme1", rate: int = 8000,
                 app=application):
        self.ws = WebsocketCommunicator(app, path, headers=headers or [])
        self.sid, self.account_sid, self.rate = sid, account_sid, rate
        self.seq = 0
        self.chunk = 0

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    async def connect(self) -> bool:
        # channels' default of 1 s is too short for a handshake on a loaded machine (a database query
        # or two); a refusal answers at once anyway.
        connected, _ = await self.ws.connect(timeout=10)
        return connected

    async def send(self, text: str) -> None:
        await self.ws.send_to(text_data=text)

    async def start(self, **params) -> None:
        await self.send(protocol.exotel_connected_frame())
        await self.send(protocol.exotel_start_frame(
            self._next(), stream_sid=self.sid, call_sid="CA1", account_sid=self.account_sid,
            from_="+919876500000", to="+918047491899", custom_parameters=params, sample_rate=self.rate))

    async def media(self, pcm: bytes, sid: str | None = None) -> None:
        self.chunk += 1
        await self.send(protocol.exotel_media_frame(self._next(), self.sid if sid is None else sid, self.chunk,
                                                    self.chunk * 100, pcm))

    async def dtmf(self, digit: str) -> None:
        await self.send(protocol.exotel_dtmf_frame(self._next(), self.sid, digit, 100))

    async def mark(self, name: str) -> None:
        await self.send(protocol.exotel_mark_frame(self._next(), self.sid, name))

    async def stop(self, reason: str = "callended") -> None:
        await self.send(protocol.exotel_stop_frame(self._next(), self.sid, call_sid="CA1",
                                                   account_sid=self.account_sid, reason=reason))

    async def frame(self, timeout: float = 10):
        """The bot's next frame, parsed; or ("close", code) when it closed the socket."""
        output = await self.ws.receive_output(timeout)
        if output["type"] == "websocket.close":
            return ("close", output.get("code", 1000))
        return protocol.parse_bot_frame(output["text"])

    async def frames_until(self, predicate, timeout: float = 5) -> list:
        seen = []
        while True:
            frame = await self.frame(timeout)
            seen.append(frame)
            if predicate(frame):
                return seen

    async def hang_up(self, code: int = 1000) -> None:
        """The socket is gone; the consumer records the session before this returns."""
        await self.ws.disconnect(code)


def dump(obj) -> str:
    return json.dumps(obj)
