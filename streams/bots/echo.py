"""The provider's reference bot: the caller hears their own audio back."""

from streams.runtime import Bot


class EchoBot(Bot):
    async def on_audio(self, pcm: bytes) -> None:
        await self.stream.stream_audio(pcm)
