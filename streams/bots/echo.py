"""The provider's reference bot: the caller hears their own audio back."""

from streams.runtime import Bot


class EchoBot(Bot):
    async def on_audio(self, pcm: bytes) -> None:
        # The caller's audio comes paced by Exotel; the echo leaves at the rate it arrives.
        await self.stream.stream_audio(pcm, paced=False)
