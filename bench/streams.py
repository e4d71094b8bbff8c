"""Stream capacity: our echo consumer on one daphne process against a plain `websockets` echo server.

    python -m bench.streams [--seconds 20] [--ns 50,200,500] [--rate 8000] [--record]

Both servers run as their own process on loopback; the simulator's load mode
(`exotel.simulator.load`, another process) plays N concurrent answered calls against each and
reports per-chunk echo round-trip latency. For each server the bench prints p50/p99 at the given Ns,
then bisects for the largest N whose p99 stays under 100 ms (a run with errors, or with less than
95% of the audio echoed, fails too), the server's CPU time per call-second, and its resident memory
per stream at the largest given N it sustains (peak RSS during the run less the idle RSS after a
warm-up). Bounded: about five minutes in all with the default 20-second runs.

Why 20 s: every call costs our server about 10 ms of CPU to set up and tear down (the handshake,
binding its token, the session row written at start and updated at the end: SQLite commits), which
the plain server does not do. Real calls last minutes; 20-second calls already weigh that cost at
several times its real share, and shorter runs measure call setup more than streaming.

Ours runs under `bench.loopwatch`, which reports after each run how late its event loop ran and
which callbacks held it over 20 ms (with the code they ran) or were stalled by a garbage collection.

Both servers run throughout and are measured in turn at each N, so that the background load of a
shared machine falls on both alike.

The plain server is the provider's reference bot: it remembers `stream_sid` on `start`, sends each
`media` payload straight back and ends on `stop`. Ours is `/streams/test/<token>` (the echo bot
through the full runtime: protocol parsing, legal re-chunking, pacing, the session row at start
and stop) on a throwaway SQLite database, or the database at BENCH_DATABASE_URL (PostgreSQL, say).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
P99_LIMIT_MS = 100.0
MIN_ECHOED = 0.95


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the plain reference server (run in its own process: `--plain PORT`) ----------------------------

async def plain_echo(ws) -> None:
    import websockets

    stream_sid = ""
    try:
        async for text in ws:
            frame = json.loads(text)
            if frame.get("event") == "start":
                stream_sid = frame.get("stream_sid", "")
            elif frame.get("event") == "media":
                await ws.send(json.dumps({"event": "media", "stream_sid": stream_sid,
                                          "media": {"payload": frame["media"]["payload"]}}))
            elif frame.get("event") == "stop":
                break
    except websockets.ConnectionClosed:
        pass


async def serve_plain(port: int) -> None:
    import websockets

    async with websockets.serve(plain_echo, "127.0.0.1", port, max_size=2**22):
        await asyncio.Future()


# --- processes --------------------------------------------------------------------------------------

def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port}")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


SETUP = """
import django; django.setup()
from django.core.management import call_command; call_command("migrate", verbosity=0)
from campaigns import compliance, links
from campaigns.models import Call, Campaign, Contact
from streams import services
from tenancy.models import Exophone, ExotelAccount, Workspace
ws, _ = Workspace.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
if not RECORD:
    print(services.test_stream_url(ws))
else:  # the load mode's account; every stream of the run lands on this one call, each with its session
    account = ExotelAccount.objects.create(workspace=ws, label="Load", account_sid="ACload", api_key="k", api_token="t")
    line = Exophone.objects.create(workspace=ws, account=account, number="+918047491899", label="Load")
    campaign = Campaign.objects.create(workspace=ws, name="Bench", account=account, bot_kind="echo")
    campaign.exophones.add(line)
    contact = Contact.objects.create(workspace=ws, campaign=campaign, phone="+919800000000", name="Load",
                                     recipient_id=compliance.ensure_recipients(ws.pk, ["+919800000000"])["+919800000000"])
    print(links.stream_url(Call.objects.create(workspace=ws, campaign=campaign, contact=contact, attempt=1,
                                               phone=contact.phone)))
"""


def prepare_database(workdir: Path, base_url: str, *, record: bool) -> tuple[dict[str, str], str]:
    """A fresh SQLite database with one workspace; returns (server environment, the URL to stream to):
    the workspace's echo test endpoint, or with `record` a call's endpoint (recorded, as real calls are)."""
    database = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{workdir / 'bench.sqlite3'}"
    env = {**os.environ, "DATABASE_URL": database, "PUBLIC_BASE_URL": base_url, "STREAM_DRAIN_SECONDS": "5",
           "MEDIA_ROOT": str(workdir / "media"), "LOG_LEVEL": "WARNING", "DJANGO_SETTINGS_MODULE": "config.settings",
           "DEV_KEYS": "true"}
    env.pop("REDIS_URL", None)  # one process: the in-memory layer, as DESIGN.md's figures were measured
    out = subprocess.run([sys.executable, "-c", f"RECORD = {record}\n{SETUP}"], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return env, out.stdout.strip().splitlines()[-1]


class Server:
    def __init__(self, name: str, argv: list[str], port: int, url: str, env: dict[str, str] | None = None,
                 loop_report: Path | None = None):
        self.name, self.url, self.port, self.loop_report = name, url, port, loop_report
        self.process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(port, self.process)

    def loop_figures(self) -> dict | None:
        """Our server's event-loop figures since the last call (`bench.loopwatch`); None for the plain one."""
        if self.loop_report is None:
            return None
        lines = self.loop_report.read_text().splitlines() if self.loop_report.exists() else []
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            written = self.loop_report.read_text().splitlines() if self.loop_report.exists() else []
            if len(written) > len(lines):
                return json.loads(written[-1])
            time.sleep(0.1)
        raise TimeoutError("the server wrote no event-loop figures")

    def stop(self) -> None:
        # Ours stops gracefully: the calls of the last run (hundreds, just ended) save their sessions first.
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            print(f"{self.name} did not stop within 60 s of SIGTERM; killed", file=sys.stderr)
            self.process.kill()
            self.process.wait()


# --- measuring --------------------------------------------------------------------------------------

def load(server: Server, calls: int, seconds: float, rate: int) -> dict:
    """One load run; adds the server's peak RSS growth during it."""
    server_pid, url = server.process.pid, server.url
    before, cpu_before = rss_kb(server_pid), cpu_seconds(server_pid)
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.wait(0.2):
            peak[0] = max(peak[0], rss_kb(server_pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = subprocess.run([sys.executable, "-m", "exotel.simulator.load", "--url", url, "--calls", str(calls),
                          "--seconds", str(seconds), "--sample-rate", str(rate)],
                         cwd=ROOT, capture_output=True, text=True, timeout=seconds * 4 + 120)
    done.set()
    sampler.join()
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    report = json.loads(out.stdout.strip().splitlines()[-1])
    report["peak_rss_kb"] = peak[0]
    # CPU the server spent per call-second: a capacity figure that other load on the machine does not skew.
    report["cpu_ms_per_call_second"] = (cpu_seconds(server_pid) - cpu_before) * 1000 / (calls * seconds)
    report["server"] = server.name
    report["loop"] = server.loop_figures()
    return report


def echoed(report: dict) -> float:
    """Share of the sent audio that came back. Our echo returns legal 3200-byte chunks, so it sends
    fewer, larger frames than it receives (two per chunk at 8 kHz); the plain server one per frame."""
    frame_bytes = report["sample_rate"] * 2 // 10  # the load mode's 100 ms frames
    chunk = 3200 if report.get("server") == "ours" else frame_bytes
    return report["frames_received"] * chunk / max(1, report["frames_sent"] * frame_bytes)


def sustains(report: dict) -> bool:
    return report["errors"] == 0 and echoed(report) >= MIN_ECHOED and report["latency_ms"]["p99"] < P99_LIMIT_MS


def line(name: str, report: dict) -> str:
    lat = report["latency_ms"]
    return (f"{name:>6} N={report['calls']:>4}: p50 {lat['p50']:7.1f} ms  p99 {lat['p99']:7.1f} ms  "
            f"echoed {100 * echoed(report):5.1f}%  errors {report['errors']}  "
            f"cpu {report['cpu_ms_per_call_second']:4.2f} ms/call-s  "
            f"{'ok' if sustains(report) else 'FAILS'}" + loop_line(report.get("loop")))


def loop_line(loop: dict | None) -> str:
    if loop is None:
        return ""
    return (f"  loop lag p99 {loop['lag_ms']['p99']:.1f} max {loop['lag_ms']['max']:.0f} ms, "
            f"callbacks over {loop['stall_ms']:g} ms: {loop['stalls']} ({loop['cpu_stalls']} in CPU time, "
            f"{loop['code_stalls']} less GC)")


class Bisection:
    """The largest N a server sustains: between its largest passing and smallest failing N so far."""

    def __init__(self, results: dict[int, dict]) -> None:
        self.low = max((n for n, r in results.items() if sustains(r)), default=0)
        self.high = min((n for n, r in results.items() if not sustains(r) and n > self.low), default=self.low * 2)

    def next_n(self) -> int | None:
        """The N to try next, or None once the gap is within 10%."""
        return None if self.high - self.low <= max(10, self.low // 10) else (self.low + self.high) // 2

    def record(self, n: int, report: dict) -> None:
        if sustains(report):
            self.low = n
        else:
            self.high = n


def bench(servers: list[Server], args) -> dict[str, dict]:
    """Both servers at each N in turn, so that both see the same background load of the machine."""
    idle_kb, results = {}, {server.name: {} for server in servers}
    for server in servers:
        load(server, 5, 2, args.rate)  # warm up: lazy imports and first allocations are not per stream
        idle_kb[server.name] = rss_kb(server.process.pid)  # (and its loop figures, just read, are dropped)
    for n in args.ns:
        for server in servers:
            results[server.name][n] = load(server, n, args.seconds, args.rate)
            print(line(server.name, results[server.name][n]), flush=True)
    searches = {server.name: Bisection(results[server.name]) for server in servers}
    for _ in range(3):
        for server in servers:
            n = searches[server.name].next_n()
            if n is not None:
                report = load(server, n, args.seconds, args.rate)
                print(line(server.name, report), flush=True)
                searches[server.name].record(n, report)
    figures = {}
    for server in servers:
        at = results[server.name]
        # Memory per stream at the largest given N it sustains: the Ns ascend, so no bigger run came
        # before it to leave freed memory behind (and beyond it backlogged frames would count too).
        kept = max((n for n in args.ns if sustains(at[n])), default=args.ns[0])
        figures[server.name] = {"at": at, "max_n": searches[server.name].low,
                                "kb_per_stream": (at[kept]["peak_rss_kb"] - idle_kb[server.name]) / kept,
                                "kb_at": kept}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each load run (each simulated call)")
    parser.add_argument("--ns", default="50,200,500", help="concurrent calls to report, ascending")
    parser.add_argument("--rate", type=int, default=8000)
    parser.add_argument("--record", action="store_true",
                        help="stream to a call's endpoint (recorded both ways, as real calls are) instead of the test endpoint")
    parser.add_argument("--plain", type=int, help=argparse.SUPPRESS)  # run the plain server on this port
    args = parser.parse_args()
    if args.plain:
        asyncio.run(serve_plain(args.plain))
        return
    args.ns = sorted(int(n) for n in args.ns.split(","))

    with tempfile.TemporaryDirectory(prefix="bench-streams-") as workdir:
        plain_port, port = free_port(), free_port()
        loop_report = Path(workdir) / "loop.jsonl"
        env, url = prepare_database(Path(workdir), f"http://127.0.0.1:{port}", record=args.record)
        servers = [
            Server("plain", [sys.executable, "-m", "bench.streams", "--plain", str(plain_port)], plain_port,
                   f"ws://127.0.0.1:{plain_port}/"),
            Server("ours", [sys.executable, "-m", "bench.loopwatch", str(loop_report), "-v", "0", "-b", "127.0.0.1",
                            "-p", str(port), "config.asgi:application"], port, url, env, loop_report),
        ]
        try:
            figures = bench(servers, args)
        finally:
            for server in servers:
                server.stop()

    print()
    print(f"{args.rate} Hz echo, {args.seconds:g} s per run, p99 limit {P99_LIMIT_MS:g} ms")
    print("| server | " + " | ".join(f"N={n} p50 / p99 ms" for n in args.ns)
          + " | max N (p99 < 100 ms) | CPU ms per call-second | KB per stream |")
    print("|---" * (len(args.ns) + 4) + "|")
    for name, fig in figures.items():
        cells = [f"{fig['at'][n]['latency_ms']['p50']:.1f} / {fig['at'][n]['latency_ms']['p99']:.1f}" for n in args.ns]
        cpu = fig["at"][fig["kb_at"]]["cpu_ms_per_call_second"]
        print(f"| {name} | " + " | ".join(cells) + f" | {fig['max_n']} | {cpu:.2f} (N={fig['kb_at']}) "
              f"| {fig['kb_per_stream']:.0f} (N={fig['kb_at']}) |")
    print("\nOur event loop (bench.loopwatch) at each N: how late a 10 ms timer fired, callbacks that held it "
          "over 20 ms (wall; CPU; CPU less garbage collection), and the longest in CPU time, with the code they ran")
    for n in args.ns:
        loop = figures["ours"]["at"][n]["loop"]
        print(f"N={n}: lag p50 {loop['lag_ms']['p50']:.1f} / p99 {loop['lag_ms']['p99']:.1f} / max "
              f"{loop['lag_ms']['max']:.0f} ms; {loop['callbacks']} callbacks, {loop['stalls']} over {loop['stall_ms']:g} ms "
              f"({loop['cpu_stalls']} in CPU time, {loop['code_stalls']} less GC), "
              f"GC pauses over it {loop['gc_pauses_over_stall']} (max {loop['gc_max_ms']} ms)")
        for stall in loop["worst_stalls"]:
            print(f"    CPU {stall['cpu_ms']:5.1f} ms (GC {stall['gc_ms']:5.1f}, wall {stall['ms']:6.1f})  {stall['callback']}")
    ratio = figures["ours"]["max_n"] / max(1, figures["plain"]["max_n"])
    print(f"\nours / plain max N: {ratio:.0%} (target >= 60%); "
          f"ours per stream: {figures['ours']['kb_per_stream']:.0f} KB (target < 200 KB)")


if __name__ == "__main__":
    main()
