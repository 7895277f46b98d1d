"""A scripted fake card for unit tests: it implements the card port and asserts every command
APDU byte for byte; :meth:`ScriptedCard.close` fails when part of the script was not used."""

from __future__ import annotations


class ScriptedCard:
    def __init__(self, script: list[tuple[bytes, bytes]]) -> None:
        self.script = list(script)
        self.sent: list[bytes] = []

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        assert self.script, f"unexpected APDU {apdu.hex().upper()}"
        expected, answer = self.script.pop(0)
        assert apdu.hex().upper() == expected.hex().upper(), "APDU differs from the script"
        self.sent.append(apdu)
        return answer[:-2], int.from_bytes(answer[-2:], "big")

    def close(self) -> None:
        assert not self.script, f"{len(self.script)} scripted APDUs were never sent"
