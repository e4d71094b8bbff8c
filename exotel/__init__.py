"""Everything that knows Exotel's wire formats, with no Django.

- `exotel.client`: sync and async HTTP clients for the Connect, Legs (v2) and ActiveStreams APIs.
- `exotel.wire`: the single place where each wire-format choice is made and explained.
- `exotel.protocol`: AgentStream WebSocket frames in and out.
- `exotel.audio`: chunking, WAV, resampling and levels for 16-bit mono PCM.
- `exotel.simulator`: a real HTTP + WebSocket server that behaves like Exotel, for tests, demo, bench.
"""
