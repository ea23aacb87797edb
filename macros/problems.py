"""Validation results as data: the validator returns them; CLI, workbook marks and receipts render them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pandas as pd

from . import schema


@dataclass(frozen=True)
class Problem:
    """One finding: where it is, how bad, and what to do (Chinese)."""

    sheet: str
    row: int | None
    column: str | None
    key: str | None
    level: str
    code: str
    message: str
    suggestion: str = ""

    @property
    def is_error(self) -> bool:
        return self.level == schema.LEVEL_ERROR

    def to_dict(self) -> dict:
        """Exactly the keys of ``healthbook validate --json``."""
        return asdict(self)


@dataclass
class Validation:
    """Normalised frames and every problem found in them."""

    frames: dict[str, pd.DataFrame]
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(p.is_error for p in self.problems)

    @property
    def warnings(self) -> int:
        return len(self.problems) - self.errors

    def error_rows(self, sheet_name: str) -> set[int]:
        """Excel row numbers of ``sheet_name`` that carry at least one error."""
        return {p.row for p in self.problems if p.is_error and p.sheet == sheet_name and p.row}
