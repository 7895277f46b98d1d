"""The OCR adapter — the only importer of ``tesserocr`` (Debian's tesseract language data).

One :class:`Tesseract` holds one initialised engine per language and reads a grey crop with
the field's whitelist and page mode. tesserocr was chosen over pytesseract by ``bench/ocr.py``
(bench/RESULTS.md: the same engine in process instead of a process per field). Not
thread-safe: each thread that reads builds its own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from readers.errors import OcrUnavailable

# Where Debian's tesseract-ocr-eng/-vie put the models; $TESSDATA_PREFIX wins.
TESSDATA_DIRS = ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata",
                 "/usr/share/tessdata")
LANGS = ("vie", "eng")


def tessdata_dir() -> str:
    """The folder holding ``vie.traineddata`` and ``eng.traineddata``."""
    env = os.environ.get("TESSDATA_PREFIX")
    for folder in ([env] if env else []) + list(TESSDATA_DIRS):
        if all((Path(folder) / f"{lang}.traineddata").is_file() for lang in LANGS):
            return folder
    raise OcrUnavailable("tessdata with vie and eng not found")


class Tesseract:
    """``text(image, lang=…, whitelist=…, psm=…)`` on a grey uint8 image (numpy array): the
    text and the lowest word confidence."""

    def __init__(self, tessdata: str | None = None) -> None:
        # One thread per read: the desk PC's other core stays free (bench/RESULTS.md measured
        # one core); tesseract's OpenMP would otherwise take both.
        os.environ.setdefault("OMP_THREAD_LIMIT", "1")
        try:
            import tesserocr
        except ImportError as e:
            raise OcrUnavailable("tesserocr is not installed") from e
        self._tesserocr: Any = tesserocr
        self.path = tessdata or tessdata_dir()
        self._apis: dict[str, Any] = {}

    def _api(self, lang: str) -> Any:
        api = self._apis.get(lang)
        if api is None:
            tr = self._tesserocr
            try:
                api = tr.PyTessBaseAPI(path=self.path + "/", lang=lang, oem=tr.OEM.LSTM_ONLY)
            except RuntimeError as e:
                raise OcrUnavailable(f"tesseract could not load {lang}") from e
            self._apis[lang] = api
        return api

    def text(self, image: Any, *, lang: str, whitelist: str = "", psm: int = 7
             ) -> tuple[str, int]:
        """The text and tesseract's lowest word confidence (0–100; 0 when nothing read)."""
        if image.ndim != 2 or image.size == 0:
            return "", 0
        api = self._api(lang)
        api.SetPageSegMode(psm)
        api.SetVariable("tessedit_char_whitelist", whitelist)
        h, w = image.shape
        api.SetImageBytes(image.tobytes(), w, h, 1, w)
        api.SetSourceResolution(300)
        text: str = api.GetUTF8Text()
        confidences = [int(c) for c in api.AllWordConfidences()]
        api.Clear()
        return text, min(confidences, default=0)

    def close(self) -> None:
        for api in self._apis.values():
            api.End()
        self._apis.clear()

    def __enter__(self) -> Tesseract:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
