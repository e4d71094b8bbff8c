"""A faithful local Exotel for tests, the demo and benchmarks (see `python -m exotel.simulator --help`).

Modules: `config` (the JSON config), `server` (HTTP API), `calls` (each call's fate and lifecycle),
`stream` (Exotel's side of the WebSocket), `caller` (the simulated caller's speech), `callbacks`
(status callbacks, Passthru, leg events), `recording`, `log` (the JSONL wire log), `load` (load mode).
"""
