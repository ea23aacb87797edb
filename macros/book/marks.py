"""Marks on input cells (placeholder until the full implementation lands)."""

from __future__ import annotations

from .package import Package
from .write_types import Mark


def read_memory(pkg: Package) -> list:
    return []


def unmark(pkg: Package, memory: list) -> set[str]:
    return set()


def apply(pkg: Package, marks: list[Mark]):
    if marks:
        raise NotImplementedError("marks are not written yet")
    return [], 0, [], set()


def memory_cells(pkg: Package, memory: list):
    return {}, set()


def replace_memory(pkg: Package, cells, drop) -> None:
    return None


def check_notes_grow(name: str, old: bytes | None, new: bytes | None) -> None:
    return None
