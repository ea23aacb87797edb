"""LibreOffice as an independent reader of everything we write, and as the program staff re-save with.

Every kind of file we write opens in LibreOffice and converts; the converted master's cell values
equal ours (read both with ``read_workbook``). The other way round: a master re-saved by LibreOffice
is still read, validated, rolled up and written correctly. One soffice call converts many files.
"""

from __future__ import annotations

import math
import shutil
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest
from docx import Document

from macros import demo, schema
from macros.book.read import read_workbook
from macros.book.write import FileBook
from macros.rollup import rollup, rollup_sheets
from macros.validate import validate
from tests.conftest import cli_json as cli
from tests.conftest import convert_many_with_libreoffice, libreoffice

AS_OF = demo.DEMO_AS_OF
COMPARED = (*schema.INPUT_SHEETS, *schema.OUTPUT_SHEETS)


def grid(path: Path) -> dict[str, list[list]]:
    """Every compared sheet as rows of comparable values (header text included)."""
    book = read_workbook(path, list(COMPARED))
    return {name: [list(frame.columns), *(normal(v) for v in frame.itertuples(index=False))]
            for name, frame in book.frames.items()}


def normal(row) -> list:
    out = []
    for v in row:
        if isinstance(v, float):
            # LibreOffice stores 15 significant digits.
            out.append(None if math.isnan(v) else round(v, 9))
        elif isinstance(v, datetime) and v.time() == datetime.min.time():
            out.append(v.date())  # a date cell LibreOffice reformatted as date-time
        elif isinstance(v, pd.Timestamp):
            out.append(v.to_pydatetime())
        else:
            out.append(v)
    return out


def assert_same_cells(ours: Path, theirs: Path) -> None:
    a, b = grid(ours), grid(theirs)
    assert a.keys() == b.keys()
    for name in a:
        assert a[name] == b[name], f"{ours.name} “{name}” differs after LibreOffice"


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:
    """The master at each stage of its life, each written by our own commands."""
    folder = tmp_path_factory.mktemp("stages")
    stages: dict[str, Path] = {}
    init = folder / "s1-init.xlsx"
    assert cli("init", str(init))[0] == 0
    stages["init"] = init
    marked = folder / "s2-marked.xlsx"
    shutil.copy2(init, marked)
    assert cli("validate", str(marked), "--mark", "--as-of", AS_OF.isoformat())[0] in (0, 1)
    stages["validate --mark"] = marked
    rolled = folder / "s3-rolled.xlsx"
    shutil.copy2(init, rolled)
    assert cli("rollup", str(rolled), "--as-of", AS_OF.isoformat())[0] in (0, 1)
    stages["rollup"] = rolled
    reported = folder / "s4-reported.xlsx"
    shutil.copy2(init, reported)
    code, data = cli("report", str(reported), "--out", str(folder / "notices"), "--as-of", AS_OF.isoformat())
    assert code in (0, 1) and data["written"], data
    stages["report"] = reported
    return stages


@pytest.fixture(scope="module")
def converted(written, tmp_path_factory) -> dict[str, Path]:
    libreoffice()
    out = tmp_path_factory.mktemp("lo-xlsx")
    return dict(zip(written, convert_many_with_libreoffice(list(written.values()), "xlsx", out)))


def test_every_stage_of_the_master_has_the_same_cells_in_libreoffice(written, converted):
    for stage, path in written.items():
        assert_same_cells(path, converted[stage])
    # The stages really differ: the output sheets filled up along the way.
    assert grid(written["init"])[schema.ISSUES.name] != grid(written["validate --mark"])[schema.ISSUES.name]
    assert len(grid(written["report"])[schema.COMMITTEE_PROGRESS.name]) == len(demo.COMMITTEES) + 1


def test_every_notice_converts_to_pdf(written, tmp_path):
    libreoffice()
    notices = sorted((written["report"].parent / "notices").glob("*.docx"))
    kinds = {"进度通报", "催办通知", "会议通知", "工作简报"}
    assert {k for k in kinds if any(k in p.name for p in notices)} == kinds
    # Names may repeat a stem across kinds only by accident; give each a unique stem to batch them.
    staged = []
    for i, path in enumerate(notices):
        staged.append(shutil.copy2(path, tmp_path / f"n{i:02d}.docx"))
    pdfs = convert_many_with_libreoffice([Path(p) for p in staged], "pdf", tmp_path)
    for source, pdf in zip(notices, pdfs):
        assert pdf.read_bytes().startswith(b"%PDF"), source.name
        assert pdf.stat().st_size > 5000, source.name
        # Every document python-docx wrote also reads back with its title paragraph.
        assert any(p.text.strip() for p in Document(str(source)).paragraphs), source.name


def test_a_master_resaved_by_libreoffice_is_read_validated_and_rolled_up(written, converted, tmp_path):
    ours, theirs = written["init"], tmp_path / "resaved.xlsx"
    shutil.copy2(converted["init"], theirs)
    a, b = read_workbook(ours), read_workbook(theirs)
    va, vb = validate(a.frames, a.settings, AS_OF), validate(b.frames, b.settings, AS_OF)
    assert [p.to_dict() for p in va.problems] == [p.to_dict() for p in vb.problems]
    assert a.settings == b.settings
    # Our writer writes into the file LibreOffice saved (shared strings, its own styles).
    assert cli("rollup", str(theirs), "--as-of", AS_OF.isoformat())[0] in (0, 1)
    ra = rollup(va, a.settings, AS_OF)
    sheets = {s.sheet.name: s for s in rollup_sheets(ra)}
    after = read_workbook(theirs, list(schema.OUTPUT_SHEETS))
    for name in (schema.COMMITTEE_PROGRESS.name, schema.PROJECT_PROGRESS.name):
        frame = after[name]
        assert list(frame["project_id" if "project_id" in frame else "committee_id"]) == [
            r.get("project_id", r.get("committee_id")) for r in sheets[name].rows]
    assert grid(theirs)[schema.LEDGER.name] == grid(ours)[schema.LEDGER.name]
    # validate --mark works on it too and finds exactly what it finds in ours.
    assert cli("validate", str(theirs), "--mark", "--as-of", AS_OF.isoformat())[0] == int(va.errors > 0)
    # (the contract columns: the hidden mark memory holds format indexes, which differ per file)
    width = len(schema.ISSUES.keys)
    assert ([r[:width] for r in grid(theirs)[schema.ISSUES.name]]
            == [r[:width] for r in grid(written["validate --mark"])[schema.ISSUES.name]])


def test_libreoffice_reads_what_the_resaved_master_became(written, converted, tmp_path):
    """Round trip twice: ours → LibreOffice → our write → LibreOffice again: same cells."""
    theirs = tmp_path / "twice.xlsx"
    shutil.copy2(converted["init"], theirs)
    FileBook(theirs).write([*rollup_sheets(rollup(validate(*_fs(theirs), AS_OF), _fs(theirs)[1], AS_OF))])
    out = tmp_path / "lo"
    out.mkdir()
    [again] = convert_many_with_libreoffice([theirs], "xlsx", out)
    assert_same_cells(theirs, again)


def _fs(path: Path):
    book = read_workbook(path)
    return book.frames, book.settings


def test_dates_survive(written, converted):
    ledger = read_workbook(converted["init"], [schema.LEDGER])[schema.LEDGER.name]
    assert all(isinstance(v, (date, datetime)) for v in ledger["date"].dropna())


# ---- consolidation: forms, receipts and the master after a merge ---------------------------------

def inbox_files(folder: Path) -> list[Path]:
    """Two hand-made submissions: C01 all good, C02 with one bad row."""
    from tests.hostile import HEADERS, row, xlsx

    folder.mkdir(parents=True, exist_ok=True)
    good = folder / "C01-十一月.xlsx"
    xlsx(good, [HEADERS, *(row(activity=f"控烟宣传 {i}", date=date(2020, 11, 3 + i)) for i in range(3))])
    partly = folder / "C02-十一月.xlsx"
    xlsx(partly, [HEADERS, row(committee_id="C02", activity="义诊"), row(committee_id="C02", project_id="P99")])
    return [good, partly]


def consolidated_copy(source: Path, folder: Path, name: str, files: list[Path]) -> tuple[Path, object]:
    from macros.consolidate import consolidate, folders

    folder.mkdir(parents=True)
    master = folder / name
    shutil.copy2(source, master)
    inbox = folders(master, {}).inbox
    inbox.mkdir()
    for f in files:
        shutil.copy2(f, inbox / f.name)
    return master, consolidate(master, as_of=AS_OF)


@pytest.fixture(scope="module")
def consolidation(written, tmp_path_factory):
    pytest.importorskip("macros.consolidate", reason="consolidation not merged yet")
    from macros.forms import build_forms

    folder = tmp_path_factory.mktemp("consolidation")
    files = inbox_files(folder / "submissions")
    master, run = consolidated_copy(written["init"], folder / "ours", "s5-consolidated.xlsx", files)
    assert run.master_written and run.rows_added == 4, run.to_dict()
    forms = build_forms(master, folder / "forms", ["C01", "C02"]).written
    return master, run, forms, files


def test_master_after_consolidate_and_forms_read_the_same_in_libreoffice(consolidation, tmp_path):
    libreoffice()
    master, run, forms, _ = consolidation
    theirs = convert_many_with_libreoffice([master, *forms], "xlsx", tmp_path)
    assert_same_cells(master, theirs[0])
    added = read_workbook(theirs[0], [schema.LEDGER])[schema.LEDGER.name]
    assert {"C01-十一月.xlsx", "C02-十一月.xlsx"} <= set(added["source"])
    for ours, converted in zip(forms, theirs[1:]):
        a, b = (read_workbook(p, [schema.LEDGER])[schema.LEDGER.name] for p in (ours, converted))
        assert list(a.columns) == list(b.columns) and len(a) == len(b), ours.name
        from python_calamine import CalamineWorkbook

        x, y = CalamineWorkbook.from_path(str(ours)), CalamineWorkbook.from_path(str(converted))
        assert x.sheet_names == y.sheet_names, ours.name  # the hidden info sheet too
        for name in x.sheet_names:
            assert ([normal(r) for r in x.get_sheet_by_name(name).to_python()]
                    == [normal(r) for r in y.get_sheet_by_name(name).to_python()]), (ours.name, name)


def test_every_receipt_converts(consolidation, tmp_path):
    libreoffice()
    _, run, _, _ = consolidation
    receipts = [f.receipt for f in run.files]
    assert len(receipts) == 2 and all(r.is_file() for r in receipts)
    for pdf in convert_many_with_libreoffice(receipts, "pdf", tmp_path):
        assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 3000


def test_a_master_resaved_by_libreoffice_consolidates_the_same(consolidation, converted, tmp_path):
    from tests.crash import changes_state, ledger_state

    master, run, _, files = consolidation
    theirs, again = consolidated_copy(converted["init"], tmp_path / "theirs", "resaved.xlsx", files)
    assert [f.to_dict() for f in again.files] == [f.to_dict() for f in run.files]
    assert ledger_state(theirs) == ledger_state(master)
    assert changes_state(theirs) == changes_state(master)
