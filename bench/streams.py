"""Stream capacity: our echo consumer on one daphne process against a plain `websockets` echo server.

    python -m bench.streams [--seconds 8] [--ns 50,200,500] [--rate 8000]

Both servers run as their own process on loopback; the simulator's load mode
(`exotel.simulator.load`, another process) plays N concurrent answered calls against each and
reports per-chunk echo round-trip latency. For each server the bench prints p50/p99 at the given Ns,
then bisects for the largest N whose p99 stays under 100 ms (a run with errors, or with fewer than
95% of the frames echoed, fails too), and the resident memory per stream measured in the server
process at the largest of the given Ns. Bounded: about three minutes in all on a 2-core machine.

The plain server is the provider's reference bot: it remembers `stream_sid` on `start`, sends each
`media` payload straight back and ends on `stop`. Ours is `/streams/test/<token>` (the echo bot
through the full runtime: protocol parsing, legal re-chunking, pacing, the session row at start
and stop) on a throwaway SQLite database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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


def prepare_database(workdir: Path, base_url: str) -> tuple[dict[str, str], str]:
    """A fresh SQLite database with one workspace; returns (server environment, its echo test URL)."""
    database = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{workdir / 'bench.sqlite3'}"
    env = {**os.environ, "DATABASE_URL": database, "PUBLIC_BASE_URL": base_url,
           "MEDIA_ROOT": str(workdir / "media"), "LOG_LEVEL": "WARNING", "DJANGO_SETTINGS_MODULE": "config.settings"}
    env.pop("REDIS_URL", None)  # one process: the in-memory layer, as DESIGN.md's figures were measured
    script = ("import django; django.setup(); from django.core.management import call_command; "
              "call_command('migrate', verbosity=0); from tenancy.models import Workspace; "
              "from streams import services; "
              "ws, _ = Workspace.objects.get_or_create(slug='bench', defaults={'name': 'Bench'}); "
              "print(services.test_stream_url(ws))")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return env, out.stdout.strip().splitlines()[-1]


class Server:
    def __init__(self, name: str, argv: list[str], port: int, url: str, env: dict[str, str] | None = None):
        self.name, self.url, self.port = name, url, port
        self.process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(port, self.process)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


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
    report["rss_growth_kb"] = peak[0] - before
    # CPU the server spent per call-second: a capacity figure that other load on the machine does not skew.
    report["cpu_ms_per_call_second"] = (cpu_seconds(server_pid) - cpu_before) * 1000 / (calls * seconds)
    report["server"] = server.name
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
            f"{'ok' if sustains(report) else 'FAILS'}")


def largest_sustained(server: Server, results: dict[int, dict], args) -> int:
    """Bisect between the largest passing and smallest failing N seen (to within 10%, at most 4 runs)."""
    passing = [n for n, r in results.items() if sustains(r)]
    failing = [n for n, r in results.items() if not sustains(r)]
    low = max(passing, default=0)
    high = min((n for n in failing if n > low), default=low * 2)
    for _ in range(4):
        if high - low <= max(10, low // 10):
            break
        mid = (low + high) // 2
        report = load(server, mid, args.seconds, args.rate)
        print(line(server.name, report), flush=True)
        if sustains(report):
            low = mid
        else:
            high = mid
    return low


def bench(server: Server, args) -> dict:
    results = {}
    for n in args.ns:
        results[n] = load(server, n, args.seconds, args.rate)
        print(line(server.name, results[n]), flush=True)
    biggest = max(args.ns)
    return {"at": results, "max_n": largest_sustained(server, results, args),
            "kb_per_stream": results[biggest]["rss_growth_kb"] / biggest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each load run")
    parser.add_argument("--ns", default="50,200,500", help="concurrent calls to report")
    parser.add_argument("--rate", type=int, default=8000)
    parser.add_argument("--plain", type=int, help=argparse.SUPPRESS)  # run the plain server on this port
    args = parser.parse_args()
    if args.plain:
        asyncio.run(serve_plain(args.plain))
        return
    args.ns = [int(n) for n in args.ns.split(",")]

    figures = {}
    plain_port = free_port()
    plain = Server("plain", [sys.executable, "-m", "bench.streams", "--plain", str(plain_port)], plain_port,
                   f"ws://127.0.0.1:{plain_port}/")
    try:
        figures["plain"] = bench(plain, args)
    finally:
        plain.stop()

    with tempfile.TemporaryDirectory(prefix="bench-streams-") as workdir:
        port = free_port()
        env, url = prepare_database(Path(workdir), f"http://127.0.0.1:{port}")
        ours = Server("ours", [sys.executable, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", str(port),
                               "config.asgi:application"], port, url, env)
        try:
            figures["ours"] = bench(ours, args)
        finally:
            ours.stop()

    print()
    print(f"{args.rate} Hz echo, {args.seconds:g} s per run, p99 limit {P99_LIMIT_MS:g} ms")
    print("| server | " + " | ".join(f"N={n} p50 / p99 ms" for n in args.ns) + " | max N (p99 < 100 ms) | KB per stream |")
    print("|---" * (len(args.ns) + 3) + "|")
    for name, fig in figures.items():
        cells = [f"{fig['at'][n]['latency_ms']['p50']:.1f} / {fig['at'][n]['latency_ms']['p99']:.1f}" for n in args.ns]
        print(f"| {name} | " + " | ".join(cells) + f" | {fig['max_n']} | {fig['kb_per_stream']:.0f} |")
    ratio = figures["ours"]["max_n"] / max(1, figures["plain"]["max_n"])
    print(f"\nours / plain max N: {ratio:.0%} (target >= 60%); "
          f"ours per stream: {figures['ours']['kb_per_stream']:.0f} KB (target < 200 KB)")


if __name__ == "__main__":
    main()
