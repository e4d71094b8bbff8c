"""Real processes for end-to-end tests: daphne, the webhook applier, Celery worker and beat, the Exotel simulator.

Each runs on a free loopback port against the test database (use the `transactional_db` fixture
so that what a test writes is committed and visible to them), logs to a file that is printed when
it fails to start, and is stopped at teardown. Nothing here is mocked.
"""

import contextlib
import os
import random
import shutil
import socket
import string
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"  # Debian installs it outside a user's PATH


@dataclass
class Service:
    name: str
    process: subprocess.Popen
    log: Path
    url: str = ""
    extra: dict = field(default_factory=dict)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 10) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """Die at once, as a crashed machine would: no cleanup, no acknowledgements."""
        self.process.kill()
        self.process.wait()


# Below the kernel's ephemeral range (32768 and up): a port the kernel hands out, as bind(0) would, may
# be handed again to another test process, or to an outgoing connection, before our process binds it.
PORTS = range(20000, 32768)


def free_port() -> int:
    """A loopback port nothing listens on, drawn at random, so that test processes side by side
    (xdist workers, other runs) rarely draw the same one at the same time."""
    while True:
        port = random.choice(PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def wait_until(predicate: Callable[[], object], *, timeout: float, what: str, interval: float = 0.1):
    """Poll `predicate` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def test_database_url() -> str:
    """The URL of the database this test session uses, for the processes it starts."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    user = db["USER"] or "postgres"
    return f"postgres://{user}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def environment(public_base_url: str = "", **extra: str) -> dict[str, str]:
    """The environment of a started process: this test run's database, secrets and storage."""
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "SECRET_KEY": settings.SECRET_KEY,
        "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }
    if public_base_url:
        env["PUBLIC_BASE_URL"] = public_base_url
    return env


def _start(name: str, argv: list[str], *, env: dict, log_dir: Path, url: str = "") -> Service:
    log = log_dir / f"{name}.log"
    log.write_text("")
    handle = log.open("a")  # appended to by every writer (nginx opens its access log on its own)
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    return Service(name, process, log, url)


def _ready(service: Service, predicate: Callable[[], object], timeout: float = 90) -> Service:
    def up():
        if service.process.poll() is not None:
            raise RuntimeError(f"{service.name} exited with {service.process.returncode}:\n{service.output()}")
        return predicate()

    try:
        wait_until(up, timeout=timeout, what=f"{service.name} to start")
    except TimeoutError:
        service.stop()
        raise TimeoutError(f"{service.name} did not start:\n{service.output()}") from None
    return service


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code < 500
    except httpx.HTTPError:
        return False


def start_together(*starts: Callable[[], Service]) -> list[Service]:
    """Start services side by side (on a loaded machine each takes seconds to import Django); they
    come back in order. If one fails to start, the others are stopped and its error raised."""
    with ThreadPoolExecutor() as pool:
        futures = [pool.submit(start) for start in starts]
    services = [future.result() for future in futures if not future.exception()]
    failed = [future.exception() for future in futures if future.exception()]
    if failed:
        for service in services:
            service.stop()
        raise failed[0]
    return services


def start_daphne(log_dir: Path, *, port: int | None = None, name: str = "daphne", public_base_url: str = "",
                 **extra_env: str) -> Service:
    """The web server (daphne, as `config.server` runs it) serving config.asgi; PUBLIC_BASE_URL is its own
    loopback address unless given (a proxy's)."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "config.server", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"]
    service = _start(name, argv, env=environment(public_base_url or url, **extra_env), log_dir=log_dir, url=url)
    return _ready(service, lambda: _answers(f"{url}/login/"))


def start_web(log_dir: Path, *, public_base_url: str, port: int | None = None, name: str = "web", workers: int = 2,
              threads: int = 1, **extra_env: str) -> Service:
    """A web process as production runs it behind the proxy: gunicorn serving config.wsgi."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--threads", str(threads),
            "--no-control-socket"]  # its default path is one per user: runs side by side would share it
    service = _start(name, argv, env=environment(public_base_url, **extra_env), log_dir=log_dir, url=url)
    return _ready(service, lambda: _answers(f"{url}/login/"))


PROXY_TEMPLATE = ROOT / "deploy" / "nginx" / "agentstream.conf.template"


def render_proxy_config(*, listen: str, web: list[str], streams: list[str]) -> str:
    """The proxy's configuration from the template docker-compose.yml's nginx uses, for loopback
    servers ("127.0.0.1:8001"). Only our variables are filled, as envsubst does; nginx's stay."""
    servers = {"PROXY_WEB_SERVERS": web, "PROXY_STREAM_SERVERS": streams}
    values = {name: " ".join(f"server {address};" for address in addresses) for name, addresses in servers.items()}
    return string.Template(PROXY_TEMPLATE.read_text()).safe_substitute(PROXY_LISTEN=listen, **values)


def start_proxy(log_dir: Path, *, web: list[Service], streams: list[Service], port: int | None = None) -> Service:
    """nginx (Debian's) in front of `web` and `streams`, configured from the compose template.

    Wrapped in a main configuration of its own: its files in `log_dir`, workers as this user (the
    test directory is private), in the foreground."""
    port = port or free_port()
    site = log_dir / "proxy-site.conf"
    site.write_text(render_proxy_config(listen=f"127.0.0.1:{port}", web=[s.url.removeprefix("http://") for s in web],
                                        streams=[s.url.removeprefix("http://") for s in streams]))
    temp = log_dir / "proxy-temp"
    temp.mkdir(exist_ok=True)
    main = log_dir / "proxy.conf"
    main.write_text(f"""
daemon off;
{'user root;' if os.geteuid() == 0 else ''}
worker_processes 1;
pid {log_dir / 'proxy.pid'};
error_log stderr notice;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {site};
}}
""")
    url = f"http://127.0.0.1:{port}"
    service = _start("proxy", [NGINX, "-c", str(main), "-p", str(log_dir)], env=dict(os.environ), log_dir=log_dir,
                     url=url)
    return _ready(service, lambda: _answers(f"{url}/login/"))


def start_applier(log_dir: Path, *, public_base_url: str, name: str = "applier", **extra_env: str) -> Service:
    """The webhook applier (`manage.py apply_callbacks`): applies what daphne stored."""
    argv = [sys.executable, "manage.py", "apply_callbacks"]
    service = _start(name, argv, env=environment(public_base_url, **extra_env), log_dir=log_dir)
    return _ready(service, lambda: "applier: started" in service.output())


def start_worker(log_dir: Path, *, public_base_url: str, name: str = "worker", **extra_env: str) -> Service:
    """A Celery worker; --purge drops messages left by an earlier run on the same broker."""
    argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel=INFO", "--concurrency=2",
            "--purge", "--without-gossip", "--without-mingle", "-n", f"{name}-{os.getpid()}@%h"]
    service = _start(name, argv, env=environment(public_base_url, **extra_env), log_dir=log_dir)
    return _ready(service, lambda: " ready." in service.output())


def revived_worker(worker: Service, log_dir: Path, *, name: str, **kwargs) -> Service:
    """The worker once its broker (Redis) restarted: itself when it reconnected, else a new one.

    kombu may fail an acknowledgement while its connection restarts ('NoneType' object has no attribute
    'hostname' in `_connparams`), and the worker exits; production's supervisor (compose's
    `restart: unless-stopped`, the demo's) starts it again, and so does this.
    """
    wait_until(lambda: worker.process.poll() is not None or "Connection to broker lost" in worker.output(),
               timeout=30, what="the worker to notice the broker's restart")
    wait_until(lambda: worker.process.poll() is not None or "Connected to redis" in worker.output().split(
        "Connection to broker lost")[-1], timeout=30, what="the worker to reconnect or exit")
    return worker if worker.process.poll() is None else start_worker(log_dir, name=name, **kwargs)


def start_beat(log_dir: Path, *, public_base_url: str, **extra_env: str) -> Service:
    argv = [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO",
            "-s", str(log_dir / "beat-schedule")]
    service = _start("beat", argv, env=environment(public_base_url, **extra_env), log_dir=log_dir)
    return _ready(service, lambda: "beat: Starting" in service.output())


def start_product(log_dir: Path, account: str, *, config: Path, **extra_env: str) -> list[Service]:
    """The simulator (`account`, answering as `config` says) and the product around it: daphne, the
    applier, a worker and beat dialling every second, started side by side. They come back as
    [simulator, daphne, applier, worker, beat]; if one fails to start, the others are stopped."""
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    return start_together(
        partial(start_simulator, log_dir, account, config=config),
        partial(start_daphne, log_dir, port=port, **extra_env),
        *(partial(start, log_dir, public_base_url=public, DISPATCH_SECONDS="1", **extra_env)
          for start in (start_applier, start_worker, start_beat)))


@contextlib.contextmanager
def running_product(log_dir: Path, account: str, *, config: Path, **extra_env: str):
    """`start_product` for a `with` block: yields (simulator, daphne); stops all in reverse."""
    started = start_product(log_dir, account, config=config, **extra_env)
    try:
        yield started[0], started[1]
    finally:
        for service in reversed(started):
            service.stop()


def start_redis(log_dir: Path, *, port: int | None = None) -> Service:
    """A private redis-server on loopback, without persistence (a restart loses what it held)."""
    import redis

    port = port or free_port()
    argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    service = _start(f"redis-{port}", argv, env=dict(os.environ), log_dir=log_dir, url=f"redis://127.0.0.1:{port}/0")

    def answers() -> bool:
        try:
            return redis.Redis(port=port, socket_timeout=1).ping()
        except redis.RedisError:
            return False

    return _ready(service, answers)


def start_simulator(log_dir: Path, *accounts: str, config: Path | None = None, seed: int = 1,
                    strict: bool = False) -> Service:
    """The Exotel simulator; accounts as "SID:KEY:TOKEN". Its JSONL wire log is extra["wire_log"]."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    wire_log = log_dir / "simulator.jsonl"
    argv = [sys.executable, "-m", "exotel.simulator", "--host", "127.0.0.1", "--port", str(port),
            "--log", str(wire_log), "--seed", str(seed)]
    for account in accounts:
        argv += ["--account", account]
    if config:
        argv += ["--config", str(config)]
    if strict:
        argv.append("--strict")
    service = _start("simulator", argv, env={**os.environ, "PYTHONUNBUFFERED": "1"}, log_dir=log_dir, url=url)
    service.extra["wire_log"] = wire_log
    return _ready(service, lambda: _answers(f"{url}/_sim/health"))
