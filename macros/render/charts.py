"""The per-committee progress chart (matplotlib), as SVG for HTML and PNG for Word."""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

from ..errors import HealthbookError
from .fmt import NO_TARGET

# Preferred CJK fonts: Windows (黑体, 微软雅黑), Linux (Noto / Source Han / WenQuanYi), macOS.
CJK_FONTS = (
    "Microsoft YaHei", "SimHei", "DengXian", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC",
    "Source Han Sans CN", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Serif CJK SC",
    "PingFang SC", "Heiti SC", "Arial Unicode MS",
)
STATUS_COLOURS = {"正常": "#3a8f4b", "滞后": "#e0a100", "严重滞后": "#c62828"}
OTHER_COLOUR = "#7f8c8d"
DISPLAY_CAP = 1.2  # bars beyond 120 % are drawn at 120 % (the label keeps the true value)
WIDTH_MM = 150
# 6.1 in wide shown 150 mm wide: 7.3 in tall is 180 mm, which leaves room on an A4 公文 page
# (225 mm of text) for the heading and the caption. Taller, the chart took a page of its own
# and left "四、各居委会进展" alone at the bottom of the page before.
MAX_HEIGHT_IN = 7.3


class NoCjkFont(HealthbookError):
    def __init__(self):
        super().__init__(
            "未找到中文字体，无法生成进度图表（图中文字会变成方框）。请安装以下任一字体后重试："
            "Windows 的“黑体”或“微软雅黑”，Linux 的 Noto Sans CJK（如 apt install fonts-noto-cjk）。"
            "通知的其余内容已照常生成。"
        )


@lru_cache(maxsize=1)
def cjk_font() -> str:
    """The family name of an installed CJK font matplotlib can use; NoCjkFont when there is none."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in installed:
            return name
    raise NoCjkFont()


@dataclass(frozen=True)
class Chart:
    svg: str   # inline <svg> for HTML ('' when not asked for)
    png: bytes  # for Word (b'' when not asked for)
    width_mm: float


def progress_chart(names: list[str], percents: list[float | None], statuses: list[str],
                   expected: float | list[float | None] | None = None, title: str = "",
                   formats: tuple[str, ...] = ("svg", "png")) -> Chart:
    """Horizontal bars, one per committee, coloured by 进度状态; ``expected`` draws what should be
    done by now: one dashed line for all, or (a list) a short dark mark across each committee's
    own bar (its projects' deadlines differ). A committee whose percent is None (no targets) gets
    no bar, labelled as such."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    font = cjk_font()
    plt.rcParams["font.sans-serif"] = [font]
    plt.rcParams["font.family"] = "sans-serif"
    plt.rcParams["axes.unicode_minus"] = False
    # SVG text stays text (small, fast, selectable); browsers draw it with any installed CJK font.
    plt.rcParams["svg.fonttype"] = "none"
    plt.rcParams["svg.hashsalt"] = "healthbook"  # deterministic SVG ids

    n = len(names)
    height = min(max(2.2, 0.28 * n + 1.0), MAX_HEIGHT_IN)
    crowded = 0.28 * n + 1.0 > MAX_HEIGHT_IN  # bars closer together: smaller labels
    fig, ax = plt.subplots(figsize=(6.1, height), dpi=150)
    shown = [0.0 if p is None else min(max(p, 0.0), DISPLAY_CAP) for p in percents]
    colours = [STATUS_COLOURS.get(s, OTHER_COLOUR) for s in statuses]
    y = list(range(n))[::-1]
    ax.barh(y, shown, color=colours, height=0.65)
    for yi, value, true in zip(y, shown, percents):
        label = NO_TARGET if true is None else f"{true * 100:.1f}%"
        ax.text(value + 0.01, yi, label, va="center", fontsize=6 if crowded else 7)
    handles = [Patch(color=c, label=s) for s, c in STATUS_COLOURS.items()]
    if isinstance(expected, list | tuple):
        marks = [(min(e, DISPLAY_CAP), yi) for e, yi, p in zip(expected, y, percents)
                 if e is not None and p is not None]
        if marks:
            ax.scatter(*zip(*marks), marker="|", s=(9 if crowded else 14) ** 2, color="#222222",
                       linewidths=1.4, zorder=3)
            handles.append(Line2D([], [], color="#222222", marker="|", linestyle="none", markersize=9,
                                  markeredgewidth=1.4, label="应完成"))
    elif expected is not None:
        ax.axvline(expected, color="#555555", linestyle="--", linewidth=0.9)
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=6.5 if crowded else 8)
    ax.set_xlim(0, DISPLAY_CAP + 0.12)
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
    ax.tick_params(axis="x", labelsize=7)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_ylim(-0.7, n - 0.3)
    ax.legend(handles=handles, fontsize=7, loc="lower right", frameon=False)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    svg, png = io.StringIO(), io.BytesIO()
    if "svg" in formats:
        fig.savefig(svg, format="svg", metadata={"Date": None})
    if "png" in formats:
        fig.savefig(png, format="png")
    plt.close(fig)
    text = svg.getvalue()
    return Chart(svg=text[text.index("<svg"):] if text else "", png=png.getvalue(), width_mm=WIDTH_MM)
