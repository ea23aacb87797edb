"""Problem codes staff read: each has a Chinese 问题类型, and the 校验结果 sheet shows it (not the code).

The codes are found in the source (every ``Problem(...)`` and the helpers that build one), not typed
again here: a new rule without a Chinese name fails this test.
"""

from __future__ import annotations

import ast
import json
import re
from datetime import date
from pathlib import Path

import python_calamine

from macros import demo, schema
from macros.book.build import build_workbook
from macros.cli import main
from macros.problems import KINDS

PACKAGE = Path(__file__).resolve().parent.parent / "macros"
AS_OF = date(2020, 6, 22)

# Where a call carries the problem code: Problem(sheet, row, column, key, level, code, ...) and the
# helpers that pass theirs on (their own ``code`` parameter is then resolved at their callers).
CODE_POSITION = {"Problem": 5, "_file_problem": 0, "with_advice": 0, "emit": 4, "report": 3}


def _strings(node: ast.AST) -> dict[str, str]:
    """Module-level NAME = "text" (and A, B = "x", "y") assignments."""
    found: dict[str, str] = {}
    for stmt in getattr(node, "body", []):
        if not isinstance(stmt, ast.Assign):
            continue
        for target in stmt.targets:
            pairs = (zip(target.elts, stmt.value.elts) if isinstance(target, ast.Tuple)
                     and isinstance(stmt.value, ast.Tuple) else [(target, stmt.value)])
            for name, value in pairs:
                if isinstance(name, ast.Name) and isinstance(value, ast.Constant) and isinstance(value.value, str):
                    found[name.id] = value.value
    return found


def _loop_values(function: ast.AST, name: str) -> list[str] | None:
    """``for a, code, b in (("x", "unknown_project", 1), ...)``: the constants ``code`` takes."""
    for loop in ast.walk(function):
        if (isinstance(loop, ast.For) and isinstance(loop.target, ast.Tuple)
                and isinstance(loop.iter, ast.Tuple)):
            names = [t.id if isinstance(t, ast.Name) else None for t in loop.target.elts]
            if name in names:
                i = names.index(name)
                return [e.elts[i].value for e in loop.iter.elts if isinstance(e, ast.Tuple)
                        and isinstance(e.elts[i], ast.Constant)]
    return None


def produced_codes() -> dict[str, str]:
    """Every problem code the package can produce → where (file:line)."""
    trees = {path: ast.parse(path.read_text(encoding="utf-8")) for path in PACKAGE.rglob("*.py")}
    constants: dict[str, str] = {}
    for tree in trees.values():
        constants.update(_strings(tree))
    codes: dict[str, str] = {}
    unresolved = []
    for path, tree in trees.items():
        functions = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)]
        for function in functions:
            params = {a.arg for a in function.args.args + function.args.kwonlyargs}
            for call in ast.walk(function):
                if not isinstance(call, ast.Call):
                    continue
                func = call.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                given = [kw.value for kw in call.keywords if kw.arg == "code"]
                if not given and name in CODE_POSITION and len(call.args) > CODE_POSITION[name]:
                    given = [call.args[CODE_POSITION[name]]]
                where = f"{path.relative_to(PACKAGE.parent)}:{call.lineno}"
                for arg in given:
                    if isinstance(arg, ast.Constant):  # ``code=True`` elsewhere is a flag, not a code
                        if isinstance(arg.value, str):
                            codes.setdefault(arg.value, where)
                    elif isinstance(arg, ast.Name) and arg.id in constants:
                        codes.setdefault(constants[arg.id], where)
                    elif isinstance(arg, ast.Name) and (values := _loop_values(function, arg.id)):
                        for value in values:
                            codes.setdefault(value, where)
                    elif isinstance(arg, ast.Name) and arg.id in params:
                        continue  # a helper's own parameter: its callers are read instead
                    else:
                        unresolved.append(where)
    assert not unresolved, f"problem codes this test cannot follow: {unresolved}"
    return codes


def test_every_code_the_validator_and_consolidation_produce_has_a_chinese_name():
    codes = produced_codes()
    # The scan reaches all three producers (a scan that finds nothing passes vacuously).
    places = {where.split(":")[0] for where in codes.values()}
    assert {"macros/validate.py", "macros/normalise.py", "macros/consolidate.py"} <= places
    assert {"required", "approximate", "normalised", "future_date", "quantity_above_target",
            "probable_resend", "subfolder"} <= set(codes)
    missing = {code: where for code, where in codes.items() if code not in KINDS}
    assert not missing, f"problem codes without a 问题类型 in macros/problems.py KINDS: {missing}"
    stale = set(KINDS) - set(codes)
    assert not stale, f"KINDS names codes nothing produces any more: {stale}"
    for code, name in KINDS.items():
        assert re.search(r"[\u4e00-\u9fff]", name) and not re.search(r"[A-Za-z]", name), (code, name)
        assert len(name) <= 12, (code, name)  # a short type, the message says the rest


def test_issues_sheet_shows_chinese_kinds_and_json_keeps_the_codes(tmp_path, capsys):
    rows = demo.demo_rows()
    ledger = rows[schema.LEDGER.name]
    ledger[0] = {**ledger[0], "project_id": None, "quantity": "800余次"}  # required, approximate
    ledger[1] = {**ledger[1], "date": "2020.6.3"}  # normalised
    path = tmp_path / "master.xlsx"
    build_workbook(path, rows)

    assert main(["validate", str(path), "--as-of", AS_OF.isoformat(), "--json"]) == 1
    codes = {i["code"] for i in json.loads(capsys.readouterr().out)["issues"]}
    assert {"required", "approximate", "normalised", "future_date"} <= codes  # machines keep the codes

    main(["validate", str(path), "--as-of", AS_OF.isoformat(), "--mark"])
    book = python_calamine.CalamineWorkbook.from_path(str(path))
    grid = book.get_sheet_by_name(schema.ISSUES.name).to_python()
    header = [str(h) for h in grid[0]]
    column = header.index(schema.ISSUES.header_of("code"))
    shown = [r[column] for r in grid[1:] if any(c != "" for c in r[: len(schema.ISSUES.keys)])]
    assert len(shown) > 4
    assert not [s for s in shown if re.search(r"[A-Za-z_]", str(s))], shown  # no English code left
    assert {KINDS[c] for c in codes} == set(shown)
    assert {"必填未填", "数量超过全年目标"} & set(shown)
