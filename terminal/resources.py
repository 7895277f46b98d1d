"""Files shipped inside the package, found with :mod:`importlib.resources` so a wheel installed
anywhere finds them: the data tables (``verify/data/*.toml``), the page assets
(``terminal/static``).

The tables stay plain TOML a person can read and correct; ``data.tables_dir`` points at a
corrected copy. A table that is missing or unreadable is reported naming the file.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from verify.errors import TableError
from verify.tables import TABLE_FILES, Tables, parse_tables

TABLES_PACKAGE = "verify.data"


def shipped_tables_dir() -> Path:
    """The folder of the shipped tables (a real folder: wheels install unzipped)."""
    return _real_dir(TABLES_PACKAGE)


def static_dir() -> Path:
    return _real_dir("terminal", "static")


def _real_dir(package: str, *parts: str) -> Path:
    where = resources.files(package).joinpath(*parts)
    path = Path(str(where))
    if not path.is_dir():
        raise TableError(f"packaged folder {path} missing: reinstall tiepdon")
    return path


def load_tables(directory: Path | None = None) -> Tables:
    """The tables from ``directory`` (``data.tables_dir``), or the shipped ones."""
    folder = directory if directory is not None else shipped_tables_dir()
    texts: dict[str, str] = {}
    for name in TABLE_FILES:
        path = folder / name
        try:
            texts[name] = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise TableError(f"data table {path} missing") from None
        except (OSError, UnicodeDecodeError) as e:
            raise TableError(f"data table {path} unreadable: {type(e).__name__}") from None
    try:
        return parse_tables(texts)
    except TableError as e:
        raise TableError(f"data table in {folder}: {e.detail}") from None
