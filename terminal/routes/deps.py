"""Typed dependencies the routes share (``Annotated[..., Depends(...)]``): the settings, the
services, who is asking, and the answers every resource gives the same way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from terminal.chip import ChipService
from terminal.events import EventBus
from terminal.flow.results import DESK, Actor
from terminal.flow.verifier import Verifier
from terminal.services import Services
from terminal.settings import Settings

NO_RESULT = {"code": "no_result", "vi": "Chưa có kết quả tra cứu nào (hoặc đã được xóa).",
             "en": "No verification yet (or it was purged)."}


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


ServicesDep = Annotated[Services, Depends(services_of)]
SettingsDep = Annotated[Settings, Depends(settings_of)]


def _verifier(services: ServicesDep) -> Verifier:
    return services.verifier


def _bus(services: ServicesDep) -> EventBus:
    return services.bus


def _chip(services: ServicesDep) -> ChipService:
    if services.chip is None:
        raise HTTPException(404, "no chip reader configured")
    return services.chip


def actor_of(request: Request) -> Actor:
    """Who looked: the logged-in staff member, the HIS token, else the desk's officer."""
    user = getattr(request.state, "user", None)
    if user is not None:
        return Actor("staff", user.username, user.name, user.officer_id)
    token = getattr(request.state, "token_name", None)
    if token:
        return Actor("his", token)
    return DESK


def signed_in(request: Request) -> Callable[[], bool] | None:
    """For a stream: whether the staff session that opened it is still open (logout, a
    disabled user, a changed password and expiry all end it). None when no session opened
    it: the loopback desk, or an HIS token (tokens are settings, fixed for the daemon's
    life)."""
    session = getattr(request.state, "session", None)
    login = getattr(request.app.state, "login", None)
    if not session or login is None:
        return None
    sessions = login.sessions
    return lambda: sessions.user(session) is not None


VerifierDep = Annotated[Verifier, Depends(_verifier)]
BusDep = Annotated[EventBus, Depends(_bus)]
ChipDep = Annotated[ChipService, Depends(_chip)]
ActorDep = Annotated[Actor, Depends(actor_of)]
SignedInDep = Annotated[Callable[[], bool] | None, Depends(signed_in)]
