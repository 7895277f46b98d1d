"""Credential in: turn QR text, typed numbers or a card image's draft into a
:class:`Credential` stamped with its keyed fingerprint; refused input is reported (log by
fingerprint, metric, ``error`` event) and re-raised for the caller to answer."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from terminal.flow.results import StaffError, error_json
from terminal.metrics import Metrics
from verify.credentials import manual_credential
from verify.errors import InputFormatError
from verify.fingerprint import KEY_BYTES, fingerprint
from verify.model import Credential
from verify.qr import MAX_PAYLOAD_CHARS, parse_qr

log = logging.getLogger(__name__)


def ephemeral_key() -> bytes:
    """For one-shot CLI commands that cannot reach the data folder."""
    return secrets.token_bytes(KEY_BYTES)


class Intake:
    def __init__(self, key: bytes, metrics: Metrics,
                 publish: Callable[[str, dict[str, Any]], None], *,
                 subject_key: bytes | None = None) -> None:
        self._key = key
        # The facility-wide key ([audit] subject_key_file): the same person, the same
        # fingerprint at every desk of the facility. None: this terminal's own key.
        self._subject_key = subject_key or key
        self.metrics = metrics
        self._publish = publish

    def fingerprint(self, raw: str) -> str:
        return fingerprint(self._key, raw)

    def audit_fingerprint(self, raw: str) -> str:
        """How the audit names a person (patient or officer): under the facility's subject
        key when there is one, so records of several desks can be matched centrally."""
        return fingerprint(self._subject_key, raw)

    def subject(self, credential: Credential) -> str | None:
        """The keyed fingerprint an auditor searches by (``tiepdon audit find``)."""
        ident = credential.id_number or credential.card_code
        return self.audit_fingerprint("subject:" + ident) if ident else None

    def from_qr(self, text: str) -> Credential:
        fp = self.fingerprint(text[:MAX_PAYLOAD_CHARS * 2])
        try:
            credential = parse_qr(text)
        except InputFormatError as e:
            self.report(e, fp)
            raise
        return replace(credential, raw_fingerprint=fp)

    def from_manual(self, *, card_code: str | None, id_number: str | None,
                    full_name: str | None, date_of_birth: str | None) -> Credential:
        raw = "|".join(x or "" for x in (card_code, id_number, full_name, date_of_birth))
        fp = self.fingerprint(raw)
        try:
            credential = manual_credential(card_code=card_code, id_number=id_number,
                                           full_name=full_name, date_of_birth=date_of_birth)
        except InputFormatError as e:
            self.report(e, fp)
            raise
        return replace(credential, raw_fingerprint=fp)

    def from_card_image(self, credential: Credential, reader: str) -> Credential:
        """A draft read from a card's print, stamped with a keyed fingerprint of what it says
        (there is no raw text to keep: the fields are the reading)."""
        c = credential
        raw = "|".join(("card_image", c.kind.value, c.id_number or "", c.old_id_number or "",
                        c.card_code or "", c.document_number or "", c.full_name or "",
                        c.date_of_birth.iso() if c.date_of_birth else ""))
        return replace(credential, raw_fingerprint=self.fingerprint(raw), reader=reader)

    def report(self, error: StaffError, fp: str | None) -> None:
        log.warning("input rejected fp=%s error=%s", fp, error.code)
        self.metrics.input_errors[error.code] += 1
        self._publish("error", error_json(error, fp))
