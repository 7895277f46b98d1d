"""HTTP security for the daemon, as an attacker would test it.

Every request, first: its ``Host`` must be one of the terminal's own names (a page elsewhere
that rebinds its DNS name to 127.0.0.1 is refused — DNS rebinding), a state-changing request
carrying ``Origin`` must come from the same host (cross-site forms), and the body may not pass
``http.max_body_bytes``. Every answer: no-store caching except static files, a CSP on every HTML
page, the usual hardening headers. When staff login is required (a LAN address, or
``auth.required``): sessions, CSRF and HIS bearer tokens (terminal/auth.py); the login runs the
slow hash in a small worker pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from terminal.auth import (
    COOKIE,
    DUMMY_HASH,
    HIS_ROUTES,
    LOOPBACK_HOSTS,
    SECURE_COOKIE,
    LoginLimiter,
    Sessions,
    UserStore,
    check_bearer,
    check_password,
    csrf_token,
    is_public,
)
from terminal.resources import static_dir
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
_STATIC = static_dir()


def _error(status: int, code: str, vi: str, en: str) -> JSONResponse:
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
            refusal = _error(421, "host_not_allowed", "Địa chỉ truy cập không hợp lệ.",
                             "This terminal does not answer to that host name.")
        elif scope["method"] in STATE_CHANGING and "origin" in headers and (
                urlsplit(headers["origin"]).netloc.lower() != host.lower()):
            refusal = _error(403, "origin", "Yêu cầu từ trang khác bị từ chối.",
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
    return _error(413, "body_too_large", "Dữ liệu gửi lên quá lớn.",
                  "The request body is too large.")


async def short_validation_error(request: Request, exc: Exception) -> JSONResponse:
    """A 422 that names the first problem only and never echoes the input back (a body of
    100 000 keys must not become an answer of 100 000 lines)."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ())[:4])[:80]
    message = str(first.get("msg", "invalid request"))[:120]
    return _error(422, "invalid_request", "Yêu cầu không hợp lệ.",
                  f"Invalid request: {where}: {message}" if where else message)


@dataclass
class Login:
    """What the login needs: users, sessions, the failure counts, the hash pool."""

    users: UserStore
    sessions: Sessions
    limiter: LoginLimiter
    pool: concurrent.futures.ThreadPoolExecutor
    waiting: asyncio.Semaphore


def install(app: FastAPI, settings: Settings, *, key: bytes, users: UserStore | None) -> None:
    """The gate and headers always; login, sessions and token scopes when ``users`` is given."""
    tokens = settings.auth.api_tokens
    secure = settings.http.behind_tls
    cookie = SECURE_COOKIE if secure else COOKIE
    app.add_exception_handler(RequestValidationError, short_validation_error)

    @app.middleware("http")
    async def guard(request: Request,
                    call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if users is None:  # loopback desk: no login; a presented HIS token still names itself
            auth = request.headers.get("authorization", "")
            request.state.token_name = (check_bearer(tokens, auth[7:].strip())
                                        if auth.lower().startswith("bearer ") else None)
            response = await call_next(request)
        else:
            response = await _authenticate(request, call_next)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        path = request.url.path
        if not path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        if response.headers.get("content-type", "").startswith("text/html"):
            response.headers.setdefault("Content-Security-Policy",
                                        DOCS_CSP if path.startswith("/docs") else PAGE_CSP)
        return response

    login = None
    if users is not None:
        login = Login(users, Sessions(users, settings.auth.session_hours), LoginLimiter(),
                      concurrent.futures.ThreadPoolExecutor(HASH_WORKERS, "scrypt"),
                      asyncio.Semaphore(HASH_QUEUE))
        app.state.login = login

    async def _authenticate(request: Request,
                            call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        assert login is not None
        path = request.url.path
        request.state.user = None
        request.state.token_name = None
        if is_public(path):
            return await call_next(request)
        auth = request.headers.get("authorization", "")
        token_name = (check_bearer(tokens, auth[7:].strip())
                      if auth.lower().startswith("bearer ") else None)
        if token_name is not None:
            if (request.method, path) not in HIS_ROUTES:
                return _error(403, "token_scope", "Mã truy cập HIS không dùng được ở đây.",
                              "The HIS token is not allowed here.")
            request.state.token_name = token_name  # the audit records which HIS looked
            return await call_next(request)  # the HIS: no cookie, so no CSRF to fear
        session = request.cookies.get(cookie, "")
        user = login.sessions.user(session) if session else None
        if user is None:
            if path.startswith("/api/") or path in ("/metrics", "/openapi.json", "/docs",
                                                    "/logout"):
                return JSONResponse({"error": UNAUTHORIZED}, status_code=401)
            return RedirectResponse("/login", status_code=303)
        if request.method in STATE_CHANGING and not hmac.compare_digest(
                request.headers.get("x-csrf-token", ""), csrf_token(key, session)):
            return _error(403, "csrf", "Phiên làm việc không hợp lệ. Tải lại trang.",
                          "Invalid session. Reload the page.")
        request.state.user = user
        request.state.session = session
        request.state.csrf = csrf_token(key, session)
        return await call_next(request)

    if login is None:
        return

    @app.get("/login", include_in_schema=False)
    async def login_page(e: int = 0) -> HTMLResponse:
        html = (_STATIC / "login.html").read_text(encoding="utf-8")
        return HTMLResponse(html.replace("__ERROR_HIDDEN__", "" if e else "hidden"))

    @app.post("/login", include_in_schema=False)
    async def do_login(request: Request) -> Response:
        client = request.client.host if request.client else "?"
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        username = form.get("username", "")[:64]
        keys = (f"addr:{client}", f"user:{username}")
        stamp = login.limiter.begin(*keys)
        if stamp is None:
            log.warning("login locked out for a while after repeated failures")
            return _error(429, "login_locked", "Sai mật khẩu nhiều lần. Thử lại sau 5 phút.",
                          "Too many wrong passwords. Try again in 5 minutes.")
        if login.waiting.locked():
            return _error(503, "login_busy", "Hệ thống đang bận. Thử lại sau ít giây.",
                          "Busy. Try again in a few seconds.")
        user = login.users.get(username)
        async with login.waiting:
            ok = await asyncio.get_running_loop().run_in_executor(
                login.pool, check_password, form.get("password", "")[:256],
                user.password if user is not None else DUMMY_HASH)
        if user is None or not ok:
            log.warning("login refused")
            return RedirectResponse("/login?e=1", status_code=303)
        login.limiter.succeeded(stamp, *keys)
        log.info("login ok")
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(cookie, login.sessions.open(user),
                            max_age=int(settings.auth.session_hours * 3600), httponly=True,
                            samesite="strict", secure=secure, path="/")
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        login.sessions.close(getattr(request.state, "session", ""))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(cookie, path="/", secure=secure, httponly=True,
                               samesite="strict")
        return response


def add_gate(app: FastAPI, settings: Settings) -> None:
    app.add_middleware(Gate, hosts=allowed_hosts(settings),
                       max_body=settings.http.max_body_bytes)


def auth_required(settings: Settings) -> bool:
    """Login is required whenever the daemon is reachable from elsewhere."""
    return settings.login_required()


def close(app: FastAPI) -> None:
    login: Any = getattr(app.state, "login", None)
    if login is not None:
        login.pool.shutdown(wait=False, cancel_futures=True)
