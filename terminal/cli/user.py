"""``tiepdon user add|passwd|disable|enable``: staff users of a LAN-bound terminal, kept in
``auth.users_file`` (the running daemon re-reads it at its next request)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from terminal.cli.common import EXIT_OK, CliError, Parser, settings_of


def register(sub: Any) -> None:
    user = sub.add_parser("user", help="staff users (LAN-bound terminals)")
    user_sub = user.add_subparsers(dest="user_command", required=True, parser_class=Parser)
    uadd = user_sub.add_parser("add", help="add a user; the password is read from stdin")
    uadd.add_argument("username")
    uadd.add_argument("--name", required=True, help="full name, sent as hoTenCb")
    uadd.add_argument("--officer-id", required=True, help="12-digit CCCD, sent as cccdCb")
    uadd.add_argument("--users-file")
    uadd.add_argument("--config")
    uadd.set_defaults(func=cmd_user_add)
    for name, text in (("passwd", "set a new password (read from stdin); ends the user's "
                                  "sessions"),
                       ("disable", "refuse the user's logins and end their sessions"),
                       ("enable", "allow a disabled user again")):
        change = user_sub.add_parser(name, help=text)
        change.add_argument("username")
        change.add_argument("--users-file")
        change.add_argument("--config")
        change.set_defaults(func=cmd_user_change)


def _users_path(args: argparse.Namespace) -> Path:
    settings = settings_of(args)
    return Path(args.users_file or settings.require("auth", "users_file"))


def _read_password() -> str:
    import getpass

    password = (getpass.getpass("Mật khẩu / password: ") if sys.stdin.isatty()
                else sys.stdin.readline().rstrip("\n"))
    if len(password) < 8:
        raise CliError("the password needs at least 8 characters")
    return password


def _one_line(text: str, what: str) -> str:
    if not text.strip() or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise CliError(f"{what} must be one line of text without control characters")
    return text


def cmd_user_add(args: argparse.Namespace) -> int:
    """Add a staff user (password from the terminal, or one line on stdin)."""
    from terminal.auth import User, hash_password, load_users, user_entry

    path = _users_path(args)
    _one_line(args.username, "the user name")
    _one_line(args.name, "--name")
    if not (len(args.officer_id) == 12 and args.officer_id.isdigit()):
        raise CliError("--officer-id is the officer's 12-digit CCCD number")
    if path.exists() and args.username in load_users(path):
        raise CliError(f"user {args.username} exists already")
    entry = user_entry(User(args.username, args.name, args.officer_id,
                            hash_password(_read_password())))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(entry)
    print(f"tiepdon: user {args.username} added", file=sys.stderr)
    return EXIT_OK


def cmd_user_change(args: argparse.Namespace) -> int:
    """passwd (a new password), disable, enable: the running daemon ends that user's sessions
    at its next request (it re-reads the file and compares the password hash)."""
    import dataclasses

    from terminal.auth import hash_password, load_users, users_text

    path = _users_path(args)
    users = load_users(path) if path.exists() else {}
    user = users.get(args.username)
    if user is None:
        raise CliError(f"no user {args.username}")
    if args.user_command == "passwd":
        user = dataclasses.replace(user, password=hash_password(_read_password()))
    else:
        user = dataclasses.replace(user, disabled=args.user_command == "disable")
    users[user.username] = user
    tmp = path.with_name(path.name + ".tmp")
    st = path.stat()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, st.st_mode & 0o777)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(users_text(users))
        f.flush()
        os.fsync(f.fileno())
    with contextlib.suppress(PermissionError):  # keep the group the service reads it with
        os.chown(tmp, st.st_uid, st.st_gid)
    tmp.replace(path)
    print(f"tiepdon: user {args.username}: {args.user_command} done", file=sys.stderr)
    return EXIT_OK
