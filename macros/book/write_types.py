"""What a writer is asked to write: shared by the file writer and the live xlwings adapter."""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import schema


@dataclass
class SheetWrite:
    """Replace an owned sheet's cell data (header row + ``rows``)."""

    sheet: schema.Sheet
    rows: list[dict]
    # Banner right of the header: when and from how many rows it was computed.
    note: str = ""
    # (row index in ``rows``, column key) → a level (错误/警告) or status name (正常/滞后/严重滞后).
    fills: dict[tuple[int, str], str] = field(default_factory=dict)
    # (row index in ``rows``, column key) → an in-workbook location such as "'台账'!B5".
    links: dict[tuple[int, str], str] = field(default_factory=dict)
    # Add ``rows`` below the sheet's rows, which stay as they are (an append-only log: 变更记录).
    append: bool = False


@dataclass(frozen=True)
class Mark:
    """A marked input cell: fill colour by level and a note carrying the message."""

    sheet: str
    row: int
    column: str  # Chinese header
    level: str
    message: str


# Fill colours shared by every writer (hex RGB without '#').
FILLS: dict[str, str] = {
    schema.LEVEL_ERROR: "FFC7CE",
    schema.LEVEL_WARNING: "FFEB9C",
    "正常": "C6EFCE",
    "滞后": "FFEB9C",
    "严重滞后": "FFC7CE",
}
