"""Walkthrough findings on the inbox: sub-folders, a missing inbox, staged copies taken for the
master, a 合计 row in column A, records deleted from a prefilled form (walk F-16, 17, 18, 19, 7)."""

from __future__ import annotations

import pytest

from macros import schema
from macros.book.read import read_workbook
from macros.cli import main
from macros.consolidate import folders
from macros.forms import build_forms

from .conftest import cli_json
from .test_consolidate import HEADERS, fill_form, new_row


@pytest.fixture
def inbox(master_copy):
    where = folders(master_copy, read_workbook(master_copy).settings)
    where.inbox.mkdir()
    return where.inbox


@pytest.mark.parametrize("label", ["合计", " 合　计 ", "合计：", "总计"])
def test_a_totals_row_typed_in_the_record_id_column_is_not_a_record(master_copy, inbox, tmp_path, label):
    [blank] = build_forms(master_copy, tmp_path / "forms", ["C06"])
    fill_form(blank, inbox / "斯文里.xlsx", [new_row(participants=12, quantity=12), new_row(participants=8, quantity=8),
                                           {"record_id": label, "participants": 20, "quantity": 20}])
    code, out = cli_json("consolidate", str(master_copy), "--dry-run", "--as-of", "2020-11-15")
    [f] = out["files"]
    assert f["status"] == "accepted" and f["rows_added"] == 2, f["issues"]
    assert not [p for p in f["issues"] if p["level"] == schema.LEVEL_ERROR]
    assert [p["row"] for p in f["issues"] if "合计行" in p["message"]] == [4]
    assert code == 0


def test_a_record_id_that_merely_contains_a_total_word_is_still_a_record(master_copy, inbox, tmp_path):
    [blank] = build_forms(master_copy, tmp_path / "forms", ["C06"])
    fill_form(blank, inbox / "斯文里.xlsx", [{"record_id": "合计1", "participants": 20, "quantity": 20}])
    code, out = cli_json("consolidate", str(master_copy), "--dry-run", "--as-of", "2020-11-15")
    [f] = out["files"]
    assert f["status"] == "rejected" and any(p["column"] == HEADERS["record_id"] for p in f["issues"])
    assert code == 1
