"""Run the Exotel simulator: `python -m exotel.simulator --account SID:KEY:TOKEN [...]`.

The load generator is `python -m exotel.simulator.load`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from aiohttp import web

from exotel.simulator import config as config_module
from exotel.simulator.calls import Simulator
from exotel.simulator.log import WireLog
from exotel.simulator.server import build_app


def _account(value: str) -> tuple[str, str, str]:
    parts = value.split(":")
    if len(parts) != 3 or not all(parts):
        raise argparse.ArgumentTypeError("expected SID:KEY:TOKEN")
    return parts[0], parts[1], parts[2]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m exotel.simulator",
        description="A local Exotel: Connect, Legs and ActiveStreams APIs, AgentStream WebSocket "
                    "calls to your bot, status callbacks, Passthru and leg events. Without --config "
                    "every number answers after about a second, speaks in bursts for about ten "
                    "seconds and hangs up.",
        epilog="CONFIG FILE (JSON)\n" + (config_module.__doc__ or "").split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--account", type=_account, action="append", required=True,
                        metavar="SID:KEY:TOKEN", help="an account and its credentials (repeatable)")
    parser.add_argument("--config", help="JSON config file (format below)")
    parser.add_argument("--log", help="JSONL wire log: every request, callback and frame")
    parser.add_argument("--seed", type=int, default=0, help="seed for ring times and caller speech")
    parser.add_argument("--strict", action="store_true",
                        help="close the stream with the fitting close code on a protocol violation, "
                             "chunk-size problems included (without it they degrade the audio and are "
                             "logged as chunk warnings)")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    sim = Simulator(config_module.load_config(args.config),
                    {sid: (key, token) for sid, key, token in args.account},
                    WireLog(args.log), seed=args.seed, strict=args.strict)
    # A request a fault holds open (a timeout sleeps past the client's patience) would hold the exit for
    # aiohttp's default of 60 s: what is still answering a second after a stop is cut off.
    runner = web.AppRunner(build_app(sim), access_log=None, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port).start()
    await sim.start(f"http://{args.host}:{args.port}")
    print(f"exotel simulator listening on http://{args.host}:{args.port}", flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    await stop.wait()
    await sim.stop()
    await runner.cleanup()
    sim.log.close()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
