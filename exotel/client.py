"""HTTP clients for Exotel: `ExotelClient` (sync, for Celery tasks) and `AsyncExotelClient`.

Both expose the same calls, defined once in `_Calls`: each call builds its `wire.Request` (what to
send, validated before anything leaves) and hands it to the client's `_send`, which is the only
part that differs (blocking vs awaitable). On `AsyncExotelClient` every call returns an awaitable.

Retries: only idempotent requests (ActiveStreams, Call Details, Get Leg) are retried, on `TransientError` and
`RateLimitedError`, with capped exponential backoff and jitter; a Retry-After longer than
`RetryPolicy.max_retry_after` is not waited out but raised, so the caller can reschedule. Connect
and Legs requests are never retried here: a timeout after sending raises `OutcomeUnknownError`,
and the dialer reconciles by its per-call token.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import ssl
import time
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx

from exotel import wire
from exotel.errors import ExotelError, OutcomeUnknownError, RateLimitedError, TransientError
from exotel.wire import (
    Account,
    ActionAccepted,
    ActiveStreams,
    BotCall,
    CallDetails,
    CallInfo,
    FlowCall,
    LegInfo,
    NewLeg,
)

__all__ = [
    "Account", "ActionAccepted", "ActiveStreams", "AsyncExotelClient", "BotCall", "CallDetails", "CallInfo",
    "ExotelClient", "FlowCall", "LegInfo", "NewLeg", "RetryPolicy",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

# Connect quickly or not at all (a failed connect is safe to retry); give Exotel longer to answer.
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
# Errors raised before the request reached the server: the request was certainly not sent.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of idempotent requests: `attempts` in all, backoff base * 2^n capped, with jitter."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, error: ExotelError) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None to give up and raise."""
        if attempt >= self.attempts:
            return None
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            return error.retry_after if error.retry_after <= self.max_retry_after else None
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        # "Equal jitter": never less than half the backoff, so retries still spread out.
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def _http_args(request: wire.Request[Any]) -> dict[str, Any]:
    args: dict[str, Any] = {"method": request.method, "url": request.url}
    if request.form:
        # A list of pairs keeps repeated keys (`StatusCallbackEvents[]` once per event).
        args["content"] = urlencode(request.form).encode()
        args["headers"] = {"Content-Type": "application/x-www-form-urlencoded"}
    elif request.json is not None:
        args["json"] = request.json
    return args


def _result(request: wire.Request[T], response: httpx.Response) -> T:
    reply = wire.Reply(status=response.status_code, body=response.content,
                       content_type=response.headers.get("content-type", ""),
                       retry_after=response.headers.get("retry-after", ""))
    error = wire.error_for(reply)
    log.info("exotel %s %s -> %s", request.method, response.request.url.path, response.status_code)
    if error is not None:
        raise error
    return request.parse(reply)


def _transport_error(request: wire.Request[Any], exc: httpx.TransportError) -> ExotelError:
    if isinstance(exc, _NOT_SENT) or request.idempotent:
        return TransientError(f"{type(exc).__name__}: {exc or 'no detail'}")
    # The POST may have reached Exotel (read timeout, dropped connection): the call may exist.
    return OutcomeUnknownError(f"{type(exc).__name__} after sending {request.method} "
                               f"{httpx.URL(request.url).path}: the request may have taken effect")


def _give_up_or_delay(request: wire.Request[Any], policy: RetryPolicy, attempt: int,
                      error: ExotelError) -> float:
    delay = policy.delay(attempt, error) if request.idempotent else None
    if delay is None:
        raise error
    log.warning("exotel %s failed (%s); retry %d in %.2fs", request.url, error, attempt, delay)
    return delay


class _Calls:
    """Exotel's calls, defined once for both clients. Subclasses provide `account` and `_send`."""

    account: Account

    def _send(self, request: wire.Request[Any]) -> Any:
        raise NotImplementedError

    def connect_to_bot(self, call: BotCall) -> Any:
        """Connect Voice AI: dial and stream the answered call to `call.stream_url` -> CallInfo."""
        return self._send(wire.connect_to_bot(self.account, call))

    def connect_to_flow(self, call: FlowCall) -> Any:
        """Dial and run the answered call through a flow -> CallInfo."""
        return self._send(wire.connect_to_flow(self.account, call))

    def create_leg(self, leg: NewLeg) -> Any:
        """Legs API: dial a leg -> LegInfo; progress arrives as leg events."""
        return self._send(wire.create_leg(self.account, leg))

    def start_stream(self, leg_sid: str, *, url: str, sample_rate: int = 8000,
                     direction: str = "bidirectional") -> Any:
        """Stream an answered leg to `url` -> ActionAccepted (`stream_started` event follows)."""
        return self._send(wire.start_stream(self.account, leg_sid, url=url, sample_rate=sample_rate,
                                            direction=direction))

    def start_say(self, leg_sid: str, text: str, loop: int = 0) -> Any:
        """Speak `text` on the leg (a greeting while the stream starts) -> ActionAccepted."""
        return self._send(wire.start_say(self.account, leg_sid, text, loop))

    def stop_say(self, leg_sid: str) -> Any:
        return self._send(wire.stop_say(self.account, leg_sid))

    def create_bridge(self, leg_sids: list[str], *, bridge_event_endpoint: str) -> Any:
        """Join active legs so they hear each other -> BridgeInfo; `bridge_created` follows as an event."""
        return self._send(wire.create_bridge(self.account, leg_sids, bridge_event_endpoint=bridge_event_endpoint))

    def hangup_leg(self, leg_sid: str) -> Any:
        return self._send(wire.hangup_leg(self.account, leg_sid))

    def active_streams(self) -> Any:
        """Live and allowed stream counts -> ActiveStreams. Retried: it is a GET."""
        return self._send(wire.active_streams(self.account))

    def call_details(self, call_sid: str) -> Any:
        """What Exotel knows of a call now -> CallDetails. Retried: it is a GET."""
        return self._send(wire.call_details(self.account, call_sid))

    def leg_details(self, leg_sid: str) -> Any:
        """Get Leg: what Exotel knows of a leg now -> CallDetails. Retried: it is a GET."""
        return self._send(wire.leg_details(self.account, leg_sid))


def _client_options(account: Account, timeout: httpx.Timeout | float) -> dict[str, Any]:
    return {"auth": httpx.BasicAuth(account.api_key, account.api_token), "timeout": timeout, "verify": _tls(),
            "headers": {"Accept": "application/json", "User-Agent": "agentstream-campaigns"}}


@functools.cache
def _tls() -> ssl.SSLContext:
    """httpx's default verifying TLS context, built once per process: httpx builds one per client,
    loading the CA bundle each time, which cost more CPU than the request it served (a client is
    made per call placed and per start_stream)."""
    return httpx.create_ssl_context()


class ExotelClient(_Calls):
    """Blocking client. One connection pool per instance: reuse it, then `close()` (or `with`)."""

    def __init__(self, account: Account, *, timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
                 retry: RetryPolicy | None = None, transport: httpx.BaseTransport | None = None) -> None:
        self.account = account
        self._retry = retry or RetryPolicy()
        self._http = httpx.Client(transport=transport, **_client_options(account, timeout))

    def _send(self, request: wire.Request[T]) -> T:
        attempt = 1
        while True:
            try:
                try:
                    response = self._http.request(**_http_args(request))
                except httpx.TransportError as exc:
                    raise _transport_error(request, exc) from exc
                return _result(request, response)
            except (TransientError, RateLimitedError) as error:
                time.sleep(_give_up_or_delay(request, self._retry, attempt, error))
            attempt += 1

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ExotelClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncExotelClient(_Calls):
    """Asyncio client; every call returns an awaitable. Close with `await aclose()` or `async with`."""

    def __init__(self, account: Account, *, timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
                 retry: RetryPolicy | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.account = account
        self._retry = retry or RetryPolicy()
        self._http = httpx.AsyncClient(transport=transport, **_client_options(account, timeout))

    async def _send(self, request: wire.Request[T]) -> T:
        attempt = 1
        while True:
            try:
                try:
                    response = await self._http.request(**_http_args(request))
                except httpx.TransportError as exc:
                    raise _transport_error(request, exc) from exc
                return _result(request, response)
            except (TransientError, RateLimitedError) as error:
                await asyncio.sleep(_give_up_or_delay(request, self._retry, attempt, error))
            attempt += 1

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncExotelClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
