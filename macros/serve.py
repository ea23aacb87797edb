"""``healthbook serve``: the Excel macros over the xlwings Server protocol (book JSON in, actions out).

The Office.js add-in (or any xlwings client) POSTs the workbook as JSON to ``/macros/<name>``;
the macro runs on an ``xw.Book(json=...)`` exactly as on a button click, and the response is the
list of actions for the client to apply in Excel. Standard library only: bound to localhost by
default, every request must carry the shared token (``Authorization: <token>``).

Licence: xlwings' JSON ``Book`` lives in ``xlwings.pro`` (PolyForm Noncommercial — free for
government institutions and public health organisations — or a paid licence); the operator sets
``XLWINGS_LICENSE_KEY`` accordingly, the server does not choose for them.
"""

from __future__ import annotations

import hmac
import json
import os
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from . import excel
from .errors import HealthbookError

MACROS: dict[str, Callable] = {
    "validate": excel.validate,
    "rollup": excel.rollup,
    "notices": excel.notices,
    "report": excel.report,
}
PREFIX = "/macros/"
MAX_BODY = 100 * 1024 * 1024
# xlwings' remote App is process-wide state: run one macro at a time.
_RUN_LOCK = threading.Lock()


class LicenceKeyMissing(HealthbookError):
    def __init__(self):
        super().__init__(
            "未设置 XLWINGS_LICENSE_KEY。xlwings Server 的 JSON 工作簿采用 PolyForm Noncommercial 许可"
            "（政府机构、公共卫生组织免费）或商业许可：非商业使用请设置 XLWINGS_LICENSE_KEY=noncommercial，"
            "商业使用请填写购买的许可密钥。"
        )


def run_macro(name: str, payload: dict, base: Path | None = None) -> dict:
    """Run macro ``name`` on the book ``payload``; the actions for the client to apply."""
    import xlwings as xw

    with _RUN_LOCK:
        book = xw.Book(json=payload)
        try:
            if name in ("notices", "report"):
                MACROS[name](book, base=base)
            else:
                MACROS[name](book)
            return book.json()
        finally:
            book.close()


def make_server(host: str, port: int, token: str, base: Path | None = None) -> ThreadingHTTPServer:
    """An HTTP server answering ``POST /macros/<name>`` (not started)."""
    if not os.environ.get("XLWINGS_LICENSE_KEY"):
        raise LicenceKeyMissing()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body, ensure_ascii=False, default=str).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            given = self.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return self._send(403, {"detail": "令牌不正确：请在加载项设置中填写与服务器相同的令牌。"})
            name = self.path.removeprefix(PREFIX).strip("/")
            if not self.path.startswith(PREFIX) or name not in MACROS:
                return self._send(404, {"detail": f"没有这个宏：{self.path}。可用：{'、'.join(MACROS)}。"})
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                return self._send(400, {"detail": "请求中没有工作簿数据，或数据过大。"})
            try:
                payload = json.loads(self.rfile.read(length))
                result = run_macro(name, payload, base)
            except (ValueError, KeyError, TypeError) as exc:
                return self._send(400, {"detail": f"无法读取工作簿数据：{type(exc).__name__}: {str(exc)[:200]}"})
            except Exception as exc:  # the xlwings version check and the like
                return self._send(400, {"detail": f"无法处理该工作簿：{str(exc)[:300]}"})
            self._send(200, result)

        def log_message(self, format: str, *args) -> None:  # keep payloads out of the log
            super().log_message("%s", f"{self.command} {self.path.split('?')[0]} {args[1] if len(args) > 1 else ''}")

    return ThreadingHTTPServer((host, port), Handler)
