"""Long titles broken between words, not inside one.

Word and LibreOffice wrap Chinese anywhere, so a title one line too long came out as
"……进展情 / 况的通报". GB/T 9704-2012 §7.3.3 asks that a title's lines keep words whole and be
arranged symmetrically (a trapezoid or a diamond). The ``cn_wrap`` filter picks the line breaks: between
words (jieba's segmentation), not inside a name the notice knows (the street, the issuer, the
pilot, a committee, the units a cell lists) unless the title cannot be set otherwise, preferring breaks
after punctuation and lines of even length, the upper line not shorter than the lower. The breaks are
chosen by dynamic programming (a paragraph pasted as a title takes a fraction of a second); text that
would need more than ``MAX_LINES`` lines is left as typed, for Word to wrap.
"""

from __future__ import annotations

import logging
import re
import unicodedata
import warnings
from collections.abc import Iterable
from functools import lru_cache

import jinja2
from markupsafe import Markup, escape

from ..normalise import split_units

# Not at the start of a line / not at the end of one (the usual Chinese line-breaking rules).
_NO_START = set("，。、；：？！）》」』】〕”’…—·%,.;:?!)]}")
_NO_END = set("（《「『【〔“‘([{")
_AFTER_PUNCT = set("，、；：？！——） 　")
EXTRA_LINE = 1.5
# More lines than this (a paragraph pasted as a title, a long list in a narrow cell): left as typed.
MAX_LINES = 10


def width(text: str) -> float:
    """Printed width in ems: a Chinese character or full-width mark is one, ASCII half."""
    return sum(0.5 if unicodedata.east_asian_width(ch) in ("Na", "H", "N") else 1.0 for ch in text)


@lru_cache(maxsize=1)
def _jieba():
    # jieba imports pkg_resources, which setuptools 67–80 deprecates with an English warning on the
    # clerk's console: not theirs to act on.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        import jieba  # loads its dictionary (about a second, once a process): only for long titles

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def _word_ends(text: str) -> dict[int, bool]:
    """Where each word ends, and whether a one-character word stands on either side there
    ("党建 / 办" splits a word the dictionary does not know)."""
    words = list(_jieba().cut(text, HMM=True))
    ends, at = {}, 0
    for word, following in zip(words, words[1:]):
        at += len(word)
        ends[at] = any(len(w) == 1 and w not in _AFTER_PUNCT | _NO_START | _NO_END for w in (word, following))
    return ends


def _costs(text: str, keep: Iterable[str]) -> dict[int, float]:
    """Allowed break positions (index of the next line's first character) and what each costs."""
    kept = [k for k in {str(k).strip() for k in keep} if len(k) > 1]
    inside = set()
    edges = set()
    for name in kept:
        start = text.find(name)
        while start != -1:
            inside.update(range(start + 1, start + len(name)))
            edges.update((start, start + len(name)))
            start = text.find(name, start + 1)
    costs = {}
    words = _word_ends(text)
    for i in set(words) | edges:
        if not 0 < i < len(text) or i in inside:
            continue
        if text[i] in _NO_START or text[i - 1] in _NO_END or text[i - 1:i + 1] == "——":
            continue
        costs[i] = 0.0 if text[i - 1] in _AFTER_PUNCT else 1.0 if i in edges else 2.0
        costs[i] += 1.5 if words.get(i) else 0.0
    return costs


def _tidy(text: str) -> str:
    """Whitespace as a title prints it. A line break typed in the cell (Alt+Enter, placed for the
    cell's width, not the page's) between two Chinese characters is dropped: the title's lines are
    chosen here, and "健康街道试点 建设推进会" is not the name. Any other run of whitespace is one space —
    between Latin words, and the space a headline sets between two phrases ("凝聚各方力量 共同推进")."""
    text = text.strip()

    def one(m: re.Match) -> str:
        joined = _wide(text[m.start() - 1]) and _wide(text[m.end()])
        return "" if joined and _LINE_BREAK.search(m.group()) else " "

    return _WHITESPACE.sub(one, text)


_WHITESPACE = re.compile(r"\s+")
_LINE_BREAK = re.compile(r"[\n\r\v\f\x85\u2028\u2029]")


def _wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def break_title(text: str, per_line: float, keep: Iterable[str] = ()) -> list[str]:
    """``text`` as lines of at most ``per_line`` ems, broken between words; one line if it fits,
    or as typed (one line, for Word to wrap) when no such breaks exist or it would take more than
    ``MAX_LINES`` lines. ``keep``: names never broken (unless longer than a line)."""
    text = _tidy(text)
    if width(text) <= per_line or len(text) < 2:
        return [text]
    # More lines than a title or a cell should have (a pasted paragraph): Word wraps it as typed.
    if width(text) - 0.5 * text.count(" ") > MAX_LINES * per_line:
        return [text]
    # Names whole if the title can be set so; else only the lines must fit (words still whole).
    names = [k for k in keep if k and width(str(k).strip()) <= per_line]
    for kept in (names, []):
        costs = _costs(text, kept)
        points = [0, *sorted(costs), len(text)]
        # As few lines as the title can take, or one more where that breaks far better
        # ("发展办、/党建办、/…" rather than "发展办、党建/办、…"): each extra line costs EXTRA_LINE.
        for fewest in range(2, MAX_LINES + 1):
            first = _best_split(text, points, costs, fewest, per_line)
            if first is None:
                continue
            more = _best_split(text, points, costs, fewest + 1, per_line)
            cuts = more[1] if more is not None and more[0] + EXTRA_LINE < first[0] else first[1]
            bounds = [0, *cuts, len(text)]
            return [text[a:b].strip() for a, b in zip(bounds, bounds[1:])]
    return [text]


def _best_split(text: str, points: list[int], costs: dict[int, float], lines: int,
                per_line: float) -> tuple[float, list[int]] | None:
    """The cheapest way to cut ``text`` into ``lines`` lines at ``points`` (all lines fitting);
    among equally cheap ways the one with the earliest cuts.

    Cost: the cuts' own costs, plus half the spread between the widest and the narrowest line,
    plus 1.5 for each line wider than the one above it (an upside-down trapezoid). The spread is
    not a sum over lines, so for each candidate narrowest width ``low`` a dynamic programme over
    (line, last two cuts) finds the cheapest cuts whose lines are all at least ``low`` wide,
    keeping per state only the (widest line, cost) pairs no other pair beats. Trying every
    ``low`` (widest first, stopping once even a perfect rest could not win) gives the exact
    optimum in about points² × lines steps per ``low``, where trying every combination of cuts
    took minutes for a paragraph.
    """
    last = len(points) - 1
    if last < lines:
        return None
    raw = [width(text[points[i]:points[i + 1]]) for i in range(last)]
    # Each line's width: from point a to point b, stripped (a space at a break is not printed).
    seg: dict[int, list[tuple[int, float]]] = {}
    for a in range(last):
        run, ends = 0.0, []
        for b in range(a + 1, last + 1):
            run += raw[b - 1]
            if run > per_line + 1:  # stripping drops at most two half-width spaces
                break
            w = width(text[points[a]:points[b]].strip())
            if w <= per_line:
                ends.append((b, w))
        seg[a] = ends
    printed = width(text) - 0.5 * text.count(" ")  # at most what the lines hold in all
    if printed > lines * per_line + 1e-9:
        return None
    widest_at_least = printed / lines
    narrowest_at_most = width(text) / lines
    lows = sorted({w for ends in seg.values() for _, w in ends if w <= narrowest_at_most}, reverse=True)
    best: tuple[float, tuple[int, ...]] | None = None
    for low in lows:
        if best is not None and (widest_at_least - low) / 2 > best[0]:
            break  # the spread alone costs more than the best found: lower ``low`` only widens it
        found = _cheapest_with_low(points, costs, lines, seg, low, best)
        if found is not None and (best is None or found < best):
            best = found
    return None if best is None else (best[0], list(best[1]))


def _cheapest_with_low(points: list[int], costs: dict[int, float], lines: int,
                       seg: dict[int, list[tuple[int, float]]], low: float,
                       bound: tuple[float, tuple[int, ...]] | None) -> tuple[float, tuple[int, ...]] | None:
    """Cheapest cuts into ``lines`` lines each at least ``low`` wide, cost counted with the spread
    taken as (widest − ``low``); None if none beats ``bound``."""
    last = len(points) - 1
    limit = bound[0] if bound is not None else float("inf")
    # state (a, b): the current line runs from point a to b → entries (widest, cost, cuts).
    layer: dict[tuple[int, int], list[tuple[float, float, tuple[int, ...]]]] = {}
    for b, w in seg[0]:
        if w >= low and b < last:
            layer[(0, b)] = [(w, 0.0, ())]
    for line in range(2, lines + 1):
        nxt: dict[tuple[int, int], list[tuple[float, float, tuple[int, ...]]]] = {}
        final = line == lines
        for (a, b), entries in layer.items():
            upper = _line_width(seg, a, b)
            cut = costs[points[b]]
            for c, w in seg[b]:
                if w < low or (c == last) != final:
                    continue
                extra = cut + (1.5 if w > upper + 0.5 else 0.0)
                bucket = nxt.setdefault((b, c), [])
                for widest, cost, cuts in entries:
                    widest = max(widest, w)
                    cost += extra
                    if cost + (widest - low) / 2 <= limit:
                        bucket.append((widest, cost, (*cuts, points[b])))
        layer = {state: _front(entries) for state, entries in nxt.items() if entries}
        if not layer:
            return None
    found = min(((cost + (widest - low) / 2, cuts) for entries in layer.values()
                 for widest, cost, cuts in entries), default=None)
    return found if found is not None and (bound is None or found <= bound) else None


def _line_width(seg: dict[int, list[tuple[int, float]]], a: int, b: int) -> float:
    return next(w for end, w in seg[a] if end == b)


def _front(entries: list[tuple[float, float, tuple[int, ...]]]) -> list[tuple[float, float, tuple[int, ...]]]:
    """Entries no other beats: a narrower widest line or a lower cost (earlier cuts on a tie)."""
    kept: list[tuple[float, float, tuple[int, ...]]] = []
    for entry in sorted(entries):
        if not kept or (entry[1], entry[2]) < (kept[-1][1], kept[-1][2]):
            kept.append(entry)
    return kept


def _names(context: jinja2.runtime.Context) -> list[str]:
    names = [context.get(k) for k in ("street", "issuer", "pilot_name")]
    committee = context.get("committee")
    if isinstance(committee, dict):
        names.append(committee.get("committee_name"))
    meeting = context.get("meeting")
    if isinstance(meeting, dict):
        names.append(meeting.get("issuer"))
    return [str(n) for n in names if n]


@jinja2.pass_context
def cn_wrap(context: jinja2.runtime.Context, value: object, per_line: float = 20, keep: object = None) -> Markup:
    """Jinja filter: text broken between words into lines of at most ``per_line`` Chinese
    characters (``\\n`` between them: a line break in Word). For titles and narrow table cells.

    ``keep``: more names to keep whole besides the notice's own (street, issuer, committee) — a list,
    or a 责任单位 text whose units are meant (``{{ p.units|cn_wrap(7, keep=p.units) }}``)."""
    text = Markup(value).unescape() if isinstance(value, Markup) else str(value)
    names = _names(context)
    if isinstance(keep, str):
        names += split_units(Markup(keep).unescape() if isinstance(keep, Markup) else keep)
    elif keep:
        names += [str(k) for k in keep]
    return Markup("\n").join(escape(line) for line in break_title(text, per_line, names))


__all__ = ["break_title", "cn_wrap", "width"]
