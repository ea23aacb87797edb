"""Shared fixtures: real workbooks built in a temp dir, and LibreOffice as an independent reader."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from macros import demo
from macros.book.build import build_workbook

ROOT = Path(__file__).resolve().parents[1]
FONTS_CONF = ROOT / "templates" / "fonts.conf"  # the one the product gives LibreOffice
SEED = ROOT.parent / "shared" / "seeds" / "000_8151fcc1a36c4383.txt"


@pytest.fixture(scope="session")
def demo_master(tmp_path_factory) -> Path:
    """The demo master as ``healthbook init`` builds it (read-only: copy before changing)."""
    path = tmp_path_factory.mktemp("demo") / "healthbook.xlsx"
    build_workbook(path, demo.demo_rows())
    return path


@pytest.fixture
def master_copy(demo_master, tmp_path) -> Path:
    """A private copy of the demo master that a test may change."""
    target = tmp_path / demo_master.name
    shutil.copy2(demo_master, target)
    return target


@pytest.fixture(scope="session")
def decorated(tmp_path_factory) -> Path:
    """A master staff have decorated (x14 dropdowns, data bar, chart, image, shape, comment, VBA,
    button) — read-only: use ``master`` to change one."""
    from .decorated import build_decorated

    return build_decorated(tmp_path_factory.mktemp("decorated") / "master.xlsm")


@pytest.fixture
def master(decorated, tmp_path) -> Path:
    """A private copy of the decorated master."""
    target = tmp_path / decorated.name
    shutil.copy2(decorated, target)
    return target


def cli_json(*argv: str) -> tuple[int, dict]:
    """Run a healthbook command in-process with --json: (exit code, parsed output)."""
    from macros.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*argv, "--json"])
    assert out.getvalue(), f"exit {code}: {err.getvalue()}"
    return code, json.loads(out.getvalue())


def libreoffice() -> str:
    """Path of soffice; in CI its absence is a failure, elsewhere the test is skipped."""
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("CI 环境应已安装 LibreOffice（见 .ci/run）")
    pytest.skip("LibreOffice 未安装")


def convert_with_libreoffice(path: Path, fmt: str, outdir: Path) -> Path:
    """Convert ``path`` with headless LibreOffice; returns the converted file."""
    profile = outdir / "lo-profile"
    subprocess.run(
        [libreoffice(), f"-env:UserInstallation=file://{profile}", "--headless",
         "--convert-to", fmt, "--outdir", str(outdir), str(path)],
        check=True, capture_output=True, timeout=180,
        env={**os.environ, "FONTCONFIG_FILE": str(FONTS_CONF)},
    )
    converted = outdir / f"{path.stem}.{fmt.split(':')[0]}"
    assert converted.exists(), f"LibreOffice did not convert {path.name}"
    return converted


def convert_many_with_libreoffice(paths: list[Path], fmt: str, outdir: Path) -> list[Path]:
    """Convert several files in ONE soffice run (start-up is most of the cost); stems must differ."""
    stems = [p.stem for p in paths]
    assert len(set(stems)) == len(stems), "LibreOffice names its output by stem"
    profile = outdir / "lo-profile"
    subprocess.run(
        [libreoffice(), f"-env:UserInstallation=file://{profile}", "--headless",
         "--convert-to", fmt, "--outdir", str(outdir), *map(str, paths)],
        check=True, capture_output=True, timeout=600,
        env={**os.environ, "FONTCONFIG_FILE": str(FONTS_CONF)},
    )
    shutil.rmtree(profile, ignore_errors=True)
    converted = [outdir / f"{p.stem}.{fmt.split(':')[0]}" for p in paths]
    missing = [p.name for p, c in zip(paths, converted) if not c.exists()]
    assert not missing, f"LibreOffice did not convert {missing}"
    return converted


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Path:
    """A fresh demo master per test module, for tests that turn its 台账 into an Excel table."""
    from .tabled import build_master

    return build_master(tmp_path_factory.mktemp("plain") / "healthbook.xlsx")


@pytest.fixture(scope="module")
def form(plain, tmp_path_factory) -> Path:
    """The blank form of committee C01 for ``plain``."""
    from macros.forms import build_forms

    out = tmp_path_factory.mktemp("forms")
    build_forms(plain, out, ["C01"])
    return next(out.glob("填报表-C01-*.xlsx"))


@pytest.fixture(params=["small parts", "early re-reads"])
def early_reads(request, monkeypatch) -> list[str]:
    """Run a test as is, and again with every part "large": deflated in the background and
    re-read early (after the marks, for the ledger); returns the sheets re-read early."""
    from macros.book import package, verify

    seen: list[str] = []
    if request.param == "early re-reads":
        monkeypatch.setattr(package, "LARGE_PART", 0)
        original = verify.GridReads.early
        monkeypatch.setattr(verify.GridReads, "early",
                            lambda self, sheet, *a: (seen.append(sheet), original(self, sheet, *a))[1])
    return seen


# The xlwings JSON book (remote engine) needs a licence key; noncommercial is free for this use.
os.environ.setdefault("XLWINGS_LICENSE_KEY", "noncommercial")
