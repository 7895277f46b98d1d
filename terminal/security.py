"""HTTP security for the daemon, as an attacker would test it.

Every request, first: its ``Host`` must be one of the terminal's own names (a page elsewhere
that rebinds its DNS name to 127.0.0.1 is refused — DNS rebinding), a state-changing request
carrying ``Origin`` must come from the same host (cross-site forms), and the body may not pass
``http.max_body_bytes``. Every answer: no-store caching except static files, a CSP on every HTML
page, the usual hardening headers. When staff login is required (a LAN address, or
``auth.required``): sessions, CSRF and HIS bearer tokens (terminal/auth.py); the login
(routes in terminal/routes/login.py) runs the slow hash in a small worker pool, never on the
event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from terminal.auth import (
    COOKIE,
    DUMMY_HASH,
    HIS_ROUTES,
    LOOPBACK_HOSTS,
    SECURE_COOKIE,
    LoginLimiter,
    Sessions,
    User,
    UserStore,
    check_bearer,
    check_password,
    csrf_token,
    is_public,
)
from terminal.settings import Settings

log = logging.getLogger(__name__)
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "X-Frame-Options": "DENY",
           "Permissions-Policy": "camera=(), microphone=(), geolocation=()"}
PAGE_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
# Swagger UI starts itself with an inline script: /docs alone allows inline code.
DOCS_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
UNAUTHORIZED = {"code": "unauthorized", "vi": "Cần đăng nhập.", "en": "Sign in first."}
HASH_WORKERS = 2      # scrypt at 128 MiB each: two at a time
HASH_QUEUE = 8        # logins waiting beyond this are told to retry
# Wrong passwords for one account from all addresses together before it is locked for
# everyone (five lock it at any one address): guessing from many addresses stays capped, one
# host cannot lock a staff member out at their own desk.
ACCOUNT_FAILURES = 20


def error_answer(status: int, code: str, vi: str, en: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "vi": vi, "en": en}}, status_code=status,
                        headers={"Cache-Control": "no-store"})


def allowed_hosts(settings: Settings) -> frozenset[str]:
    """The names a browser may call this terminal by, lower-case, without the port."""
    if settings.http.allowed_hosts:
        return frozenset(h.strip().lower() for h in settings.http.allowed_hosts if h.strip())
    names = set(LOOPBACK_HOSTS)
    host = settings.http.host.strip().lower()
    if host and host not in ("0.0.0.0", "::"):  # noqa: S104 - compared, not bound
        names.add(f"[{host}]" if ":" in host else host)
    return frozenset(names)


def host_name(host: str) -> str:
    """``name:port`` / ``[v6]:port`` → ``name`` / ``[v6]``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[:host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Gate:
    """Pure ASGI, outermost: host, origin and body size, before anything reads the body."""

    def __init__(self, app: ASGIApp, *, hosts: frozenset[str], max_body: int) -> None:
        self.app = app
        self.hosts = hosts
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        refusal = None
        if host_name(host) not in self.hosts:
            refusal = error_answer(421, "host_not_allowed",
                                   "Địa chỉ truy cập không hợp lệ.",
                                   "This terminal does not answer to that host name.")
        elif scope["method"] in STATE_CHANGING and "origin" in headers and (
                urlsplit(headers["origin"]).netloc.lower() != host.lower()):
            refusal = error_answer(403, "origin", "Yêu cầu từ trang khác bị từ chối.",
                                   "A request from another site was refused.")
        else:
            try:
                length = int(headers.get("content-length", "0") or 0)
            except ValueError:
                length = self.max_body + 1
            if length > self.max_body:
                refusal = _too_large()
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self._capped(scope, receive, send)

    async def _capped(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A body sent without a length (chunked) is counted as it arrives; past the limit the
        client is answered 413 here and the app is told the client left (FastAPI would turn an
        exception from the body into its own 400)."""
        seen = 0
        started = refused = False

        async def counted() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    refused = True
                    if not started:
                        await _too_large()(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 went out already
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted, tracked)


def _too_large() -> JSONResponse:
    return error_answer(413, "body_too_large", "Dữ liệu gửi lên quá lớn.",
                        "The request body is too large.")


async def short_validation_error(request: Request, exc: Exception) -> JSONResponse:
    """A 422 that names the first problem only and never echoes the input back (a body of
    100 000 keys must not become an answer of 100 000 lines)."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ())[:4])[:80]
    message = str(first.get("msg", "invalid request"))[:120]
    return error_answer(422, "invalid_request", "Yêu cầu không hợp lệ.",
                        f"Invalid request: {where}: {message}" if where else message)


@dataclass
class Login:
    """What the login needs: users, sessions, the failure counts, the hash pool, the cookie.
    The routes are in ``terminal/routes/login.py``."""

    users: UserStore
    sessions: Sessions
    limiter: LoginLimiter
    pool: concurrent.futures.ThreadPoolExecutor
    waiting: asyncio.Semaphore
    cookie: str
    secure: bool  # behind TLS: the cookie is Secure
    session_hours: float

    async def check(self, username: str, password: str) -> User | None:
        """The user whose password this is, else None. The slow hash runs in the pool, and
        an unknown user costs a hash too (of a dummy), so timing tells no names."""
        user = self.users.get(username)
        async with self.waiting:
            ok = await asyncio.get_running_loop().run_in_executor(
                self.pool, check_password, password,
                user.password if user is not None else DUMMY_HASH)
        return user if user is not None and ok else None


def install(app: FastAPI, settings: Settings, *, key: bytes, users: UserStore | None) -> None:
    """The gate and headers always; login, sessions and token scopes when ``users`` is given
    (the login routes are mounted by ``create_app`` then)."""
    tokens = settings.auth.api_tokens
    app.add_exception_handler(RequestValidationError, short_validation_error)
    login = None
    if users is not None:
        login = Login(users, Sessions(users, settings.auth.session_hours),
                      LoginLimiter(caps={"user": ACCOUNT_FAILURES}),
                      concurrent.futures.ThreadPoolExecutor(HASH_WORKERS, "scrypt"),
                      asyncio.Semaphore(HASH_QUEUE),
                      cookie=SECURE_COOKIE if settings.http.behind_tls else COOKIE,
                      secure=settings.http.behind_tls,
                      session_hours=settings.auth.session_hours)
        app.state.login = login

    @app.middleware("http")
    async def guard(request: Request,
                    call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if login is None:  # loopback desk: no login; a presented HIS token still names itself
            request.state.token_name = _token_name(tokens, request)
            response = await call_next(request)
        else:
            response = await _authenticate(request, call_next, login, tokens, key)
        _harden(request.url.path, response)
        return response


def _token_name(tokens: list[str], request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return check_bearer(tokens, auth[7:].strip()) if auth.lower().startswith("bearer ") else None


def _limited_token_name(tokens: list[str], request: Request,
                        limiter: LoginLimiter) -> tuple[str | None, bool]:
    """A presented bearer token's name, with guesses limited per address as logins are (5
    wrong in 5 minutes, then that address is refused, the right token included): (name,
    locked)."""
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("bearer "):
        return None, False
    key = f"bearer|{request.client.host if request.client else '?'}"
    stamp = limiter.begin(key)
    if stamp is None:
        return None, True
    name = check_bearer(tokens, auth[7:].strip())
    if name is not None:
        limiter.succeeded(stamp, key)
    return name, False


def _harden(path: str, response: Response) -> None:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if not path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    if response.headers.get("content-type", "").startswith("text/html"):
        response.headers.setdefault("Content-Security-Policy",
                                    DOCS_CSP if path.startswith("/docs") else PAGE_CSP)


async def _authenticate(request: Request, call_next: Callable[[Request], Awaitable[Response]],
                        login: Login, tokens: list[str], key: bytes) -> Response:
    path = request.url.path
    request.state.user = None
    request.state.token_name = None
    if is_public(path):
        return await call_next(request)
    token_name, locked = _limited_token_name(tokens, request, login.limiter)
    if locked:
        return error_answer(429, "token_locked",
                            "Quá nhiều mã truy cập sai từ máy này. Thử lại sau 5 phút.",
                            "Too many wrong access tokens from this address. Try again in "
                            "5 minutes.")
    if token_name is not None:
        if (request.method, path) not in HIS_ROUTES:
            return error_answer(403, "token_scope",
                                "Mã truy cập HIS không dùng được ở đây.",
                                "The HIS token is not allowed here.")
        request.state.token_name = token_name  # the audit records which HIS looked
        return await call_next(request)  # the HIS: no cookie, so no CSRF to fear
    session = request.cookies.get(login.cookie, "")
    user = login.sessions.user(session) if session else None
    if user is None:
        if path.startswith("/api/") or path in ("/metrics", "/openapi.json", "/docs",
                                                "/logout"):
            return JSONResponse({"error": UNAUTHORIZED}, status_code=401)
        return RedirectResponse("/login", status_code=303)
    if request.method in STATE_CHANGING and not hmac.compare_digest(
            request.headers.get("x-csrf-token", ""), csrf_token(key, session)):
        return error_answer(403, "csrf", "Phiên làm việc không hợp lệ. Tải lại trang.",
                            "Invalid session. Reload the page.")
    request.state.user = user
    request.state.session = session
    request.state.csrf = csrf_token(key, session)
    return await call_next(request)


def add_gate(app: FastAPI, settings: Settings) -> None:
    app.add_middleware(Gate, hosts=allowed_hosts(settings),
                       max_body=settings.http.max_body_bytes)


def auth_required(settings: Settings) -> bool:
    """Login is required whenever the daemon is reachable from elsewhere."""
    return settings.login_required()


def staff_users(settings: Settings) -> UserStore | None:
    """The staff who may sign in, when login is required; None for a loopback desk."""
    return settings.staff_users() if auth_required(settings) else None


def close(app: FastAPI) -> None:
    login: Any = getattr(app.state, "login", None)
    if login is not None:
        login.pool.shutdown(wait=False, cancel_futures=True)
