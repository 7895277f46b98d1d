"""HTTP client for the insurance registry gateway: the only user of ``httpx`` in the project.

Speaks :mod:`verify.registry`'s protocol over a pooled async client. A token is reused until
its absolute expiry, refreshed on expiry and once on a 401. Transport failures become
:class:`RegistryUnavailable`, unreadable answers :class:`RegistryProtocolError`. The HIS
webhook (``terminal/feeds/webhook.py``) posts through :class:`Poster`, so that httpx and what
it may log stay here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import httpx

from verify.errors import (
    RegistryAuthError,
    RegistryProtocolError,
    RegistryUnavailable,
    VerifyError,
)
from verify.history import HISTORY_PATH, Visit, parse_history_answer
from verify.registry import (
    CHECK_PATH,
    CODE_AUTH,
    CODE_OK,
    LOGIN_PATH,
    CardQuery,
    RegistryAnswer,
    Token,
    encode_check_form,
    encode_check_params,
    encode_login_form,
    parse_check_answer,
    parse_login_answer,
)

log = logging.getLogger(__name__)


class _Retryable(RegistryUnavailable):
    """A refused or reset connection: worth one more try after a short, jittered pause."""


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def parse_json_answer(content: bytes) -> Any:
    """The gateway's JSON, strictly: no NaN/Infinity, bounded nesting, valid UTF-8."""
    try:
        return json.loads(content, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:
        raise RegistryProtocolError("registry answer is not JSON") from e


def _no_request_lines(record: logging.LogRecord) -> bool:
    """httpx logs each request URL at INFO; the gateway protocol puts the token and the
    password hash in the query string, so such lines are dropped wherever logging goes."""
    return record.levelno >= logging.WARNING


# This module is the project's only httpx user, so it owns what httpx may log.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).addFilter(_no_request_lines)
MAX_ANSWER_BYTES = 1 << 20  # a card check answer is a few KB; refuse megabytes of junk
ANSWER_DEADLINE_SECONDS = 60.0  # one exchange, however the gateway trickles it


class CircuitBreaker:
    """After ``threshold`` failures in a row the gateway is not asked for ``cooldown``
    seconds (a dead gateway costs nothing per patient); then one trial request decides."""

    def __init__(self, threshold: int = 3, cooldown: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self.failures = 0
        self.opened_at: float | None = None

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self._clock() - self.opened_at >= self.cooldown else "open"

    def allow(self) -> bool:
        return self.state != "open"

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None

    def failure(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold or self.state == "half_open":
            self.opened_at = self._clock()


@dataclass(slots=True)
class RegistryHealth:
    """What the daemon reports on /api/v1/health: the outcome of the last exchange."""

    status: str = "unknown"     # ok | degraded | down | unknown (nothing asked yet)
    reason: str = ""
    last_ok: datetime | None = None
    last_error: datetime | None = None
    last_latency_ms: float | None = None


@dataclass(slots=True)
class RegistryReach:
    """The minute's reachability probe (:meth:`RegistryClient.reach`): what a central alert
    reads, independent of the cached token and of the breaker."""

    up: bool | None = None      # None: not probed yet
    last_ok: datetime | None = None
    last_checked: datetime | None = None


class RegistryClient:
    """One facility account on one gateway. Safe to share between concurrent lookups."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout_seconds: float = 10.0,
        verify_tls: bool = True,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        breaker: CircuitBreaker | None = None,
        attempts: int = 2,
    ) -> None:
        self.breaker = breaker or CircuitBreaker()
        self.attempts = max(1, attempts)
        self._username = username
        self._password = password
        self._now = now
        self._token: Token | None = None
        self._login_lock = asyncio.Lock()
        self.health = RegistryHealth()
        self.reachability = RegistryReach()
        self._timeout_seconds = timeout_seconds
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout_seconds),
            verify=verify_tls,
            headers={"User-Agent": "tiepdon/0.1", "Accept": "application/json"},
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def check(self, query: CardQuery) -> RegistryAnswer:
        """One card check; raises a ``RegistryError`` subclass when no answer was had.

        Connection failures are retried (bounded, with jitter); a timeout is not — the
        caller's latency budget decides. While the breaker is open nothing is sent.
        """
        if not self.breaker.allow():
            raise RegistryUnavailable("circuit open: the gateway failed repeatedly")
        started = time.perf_counter()
        try:
            answer = await self._with_retries(query)
        except (RegistryUnavailable, RegistryProtocolError, RegistryAuthError) as e:
            self.breaker.failure()
            self._mark(ok=False, reason=type(e).__name__, started=started)
            raise
        self.breaker.success()
        self._mark(ok=True, reason="", started=started)
        return answer

    async def _with_retries(self, query: CardQuery) -> RegistryAnswer:
        for attempt in range(self.attempts):
            try:
                answer = await self._check_once(query, await self._ensure_token())
                if answer.code == CODE_AUTH:
                    # Token revoked or bound to another IP: log in again once.
                    log.info("registry answered 401; logging in again")
                    answer = await self._check_once(query, await self._ensure_token(force=True))
                    if answer.code == CODE_AUTH:
                        raise RegistryAuthError("the gateway refuses the fresh token too")
                return answer
            except _Retryable as e:
                if attempt + 1 >= self.attempts:
                    raise RegistryUnavailable(str(e)) from e
                await asyncio.sleep(random.uniform(0.05, 0.25))  # noqa: S311 - jitter
        raise RegistryUnavailable("no attempt made")  # unreachable: attempts >= 1

    async def history(self, query: CardQuery) -> list[Visit]:
        """The visit history (``Lskcb2025``); raises a ``RegistryError`` subclass when none
        was had. Its failures never count against the breaker: a history endpoint in trouble
        must not send eligibility to the offline cache."""
        if not self.breaker.allow():
            raise RegistryUnavailable("circuit open: the gateway failed repeatedly")
        for force in (False, True):
            token = await self._ensure_token(force=force)
            try:
                body = await self._post(HISTORY_PATH, data=encode_check_form(query),
                                        params=encode_check_params(token, self._password))
            except _Retryable as e:
                raise RegistryUnavailable(str(e)) from e
            code, visits = parse_history_answer(body)
            if code == CODE_OK:
                return visits
            if code != CODE_AUTH:
                raise RegistryProtocolError(f"history answered {code}")
        raise RegistryAuthError("the gateway refuses the fresh token for the history too")

    async def probe(self) -> None:
        """Health check: a valid token, logging in only when the cached one expired.

        A login says nothing about the card-check endpoint, so it never closes the breaker:
        after the cool-down the next real lookup (or a re-check) is the trial.
        """
        if self.breaker.state != "closed":
            self.health.status, self.health.reason = "down", f"circuit {self.breaker.state}"
            return
        started = time.perf_counter()
        try:
            await self._ensure_token()
        except (RegistryUnavailable, RegistryProtocolError, RegistryAuthError) as e:
            self._mark(ok=False, reason=type(e).__name__, started=started)
            return
        self._mark(ok=True, reason="", started=started)

    async def reach(self) -> bool:
        """Is the gateway answering at all: one request without credentials (a GET on the
        login path; its body is not read), answered below HTTP 500 within the timeout.

        Not a login: a login a minute from every desk of a facility on one account could
        cost the desks their tokens. Never counted by the breaker (a real lookup decides
        that); a refused, reset, timed-out or 5xx answer is down.
        """
        now = self._now()
        try:
            async with asyncio.timeout(self._timeout_seconds), self._http.stream(
                    "GET", LOGIN_PATH) as response:
                up = response.status_code < 500
        except (TimeoutError, httpx.HTTPError, httpx.InvalidURL):
            up = False
        r = self.reachability
        r.up, r.last_checked = up, now
        if up:
            r.last_ok = now
        return up

    def _mark(self, *, ok: bool, reason: str, started: float) -> None:
        h = self.health
        h.last_latency_ms = (time.perf_counter() - started) * 1000
        if ok:
            h.status, h.reason, h.last_ok = "ok", "", self._now()
        else:
            h.status, h.reason, h.last_error = "degraded", reason, self._now()

    async def _ensure_token(self, *, force: bool = False) -> Token:
        token = self._token
        if not force and token is not None and token.is_valid(self._now()):
            return token
        async with self._login_lock:
            if not force and self._token is not None and self._token.is_valid(self._now()):
                return self._token
            body = await self._post(LOGIN_PATH, data=encode_login_form(self._username,
                                                                        self._password))
            self._token = parse_login_answer(body)
            log.info("registry login ok; token valid until %s",
                     self._token.expires_at.isoformat())
            return self._token

    async def _check_once(self, query: CardQuery, token: Token) -> RegistryAnswer:
        body = await self._post(CHECK_PATH, data=encode_check_form(query),
                                params=encode_check_params(token, self._password))
        return parse_check_answer(body)

    async def _post(self, path: str, *, data: dict[str, str],
                    params: dict[str, str] | None = None) -> Any:
        try:
            async with asyncio.timeout(ANSWER_DEADLINE_SECONDS), self._http.stream(
                    "POST", path, data=data, params=params) as response:
                content = b""
                # Never more than MAX_ANSWER_BYTES in memory, and the whole answer within the
                # deadline: an endless or trickling answer is refused, not accumulated.
                async for chunk in response.aiter_bytes():
                    content += chunk
                    if len(content) > MAX_ANSWER_BYTES:
                        raise RegistryProtocolError("registry answer too large")
        except TimeoutError as e:
            raise RegistryUnavailable("registry answer took too long") from e
        except httpx.TimeoutException as e:
            raise RegistryUnavailable("registry timed out") from e
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as e:
            raise _Retryable(f"registry transport error: {type(e).__name__}") from e
        except (httpx.HTTPError, httpx.InvalidURL) as e:  # InvalidURL: a redirect's, say
            raise RegistryUnavailable(f"registry transport error: {type(e).__name__}") from e
        if response.status_code == 401:
            if path == LOGIN_PATH:
                raise RegistryAuthError("login refused with HTTP 401")
            return {"maKetQua": CODE_AUTH}
        if response.status_code >= 500:
            raise RegistryUnavailable(f"registry answered HTTP {response.status_code}")
        if response.status_code >= 400:
            raise RegistryProtocolError(f"registry answered HTTP {response.status_code}")
        return parse_json_answer(content)


class PostUnanswered(VerifyError):
    """A POST that got no answer (refused, reset, timed out); ``kind`` names the cause."""

    code = "post_unanswered"

    def __init__(self, kind: str) -> None:
        super().__init__(f"no answer: {kind}")
        self.kind = kind


class Poster:
    """One kept-alive connection that POSTs bodies and reads only the answer's status code:
    the HIS webhook's link. Used as ``async with Poster(...) as poster``."""

    def __init__(self, *, timeout_seconds: float) -> None:
        self._http = httpx.AsyncClient(follow_redirects=False, timeout=timeout_seconds)

    async def __aenter__(self) -> Poster:
        await self._http.__aenter__()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._http.__aexit__(kind, error, tb)

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """The status code (the body is not read); :class:`PostUnanswered` when none came."""
        try:
            async with self._http.stream("POST", url, content=body, headers=headers) as answer:
                return answer.status_code
        except httpx.HTTPError as e:
            raise PostUnanswered(type(e).__name__) from e
