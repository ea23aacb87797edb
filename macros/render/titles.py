"""Long titles broken between words, not inside one.

Word and LibreOffice wrap Chinese anywhere, so a title one line too long came out as
"……进展情 / 况的通报". GB/T 9704-2012 §7.3.3 asks that a title's lines keep words whole and be
arranged symmetrically (a trapezoid or a diamond). The ``cn_wrap`` filter picks the line breaks: between
words (jieba's segmentation), not inside a name the notice knows (the street, the issuer, the
pilot, a committee) unless the title cannot be set otherwise, preferring breaks after punctuation and lines of even length, the upper line not
shorter than the lower.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

import jinja2
from markupsafe import Markup, escape

# Not at the start of a line / not at the end of one (the usual Chinese line-breaking rules).
_NO_START = set("，。、；：？！）》」』】〕”’…—·%,.;:?!)]}")
_NO_END = set("（《「『【〔“‘([{")
_AFTER_PUNCT = set("，、；：？！——） 　")
EXTRA_LINE = 1.5


def width(text: str) -> float:
    """Printed width in ems: a Chinese character or full-width mark is one, ASCII half."""
    return sum(0.5 if unicodedata.east_asian_width(ch) in ("Na", "H", "N") else 1.0 for ch in text)


@lru_cache(maxsize=1)
def _jieba():
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


def break_title(text: str, per_line: float, keep: Iterable[str] = ()) -> list[str]:
    """``text`` as lines of at most ``per_line`` ems, broken between words; one line if it fits,
    or as typed (one line, for Word to wrap) when no such breaks exist. ``keep``: names never broken."""
    text = " ".join(text.split())
    if width(text) <= per_line or len(text) < 2:
        return [text]
    # Names whole if the title can be set so; else only the lines must fit (words still whole).
    for names in (list(keep), []):
        costs = _costs(text, names)
        points = [0, *sorted(costs), len(text)]
        # As few lines as the title can take, or one more where that breaks far better
        # ("发展办、/党建办、/…" rather than "发展办、党建/办、…"): each extra line costs EXTRA_LINE.
        for fewest in range(2, 7):
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
    """The cheapest way to cut ``text`` into ``lines`` lines at ``points`` (all lines fitting)."""
    from itertools import combinations

    inner = points[1:-1]
    if len(inner) < lines - 1:
        return None
    best = None
    for chosen in combinations(inner, lines - 1):
        bounds = [0, *chosen, len(text)]
        widths = [width(text[a:b].strip()) for a, b in zip(bounds, bounds[1:])]
        if max(widths) > per_line:
            continue
        # Even lines; a lower line longer than the one above it (an upside-down trapezoid) costs more.
        shape = (max(widths) - min(widths)) / 2
        shape += sum(1.5 for upper, lower in zip(widths, widths[1:]) if lower > upper + 0.5)
        cost = sum(costs[c] for c in chosen) + shape
        if best is None or cost < best[0]:
            best = (cost, list(chosen))
    return best


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
def cn_wrap(context: jinja2.runtime.Context, value: object, per_line: float = 20) -> Markup:
    """Jinja filter: text broken between words into lines of at most ``per_line`` Chinese
    characters (``\\n`` between them: a line break in Word). For titles and narrow table cells."""
    text = Markup(value).unescape() if isinstance(value, Markup) else str(value)
    return Markup("\n").join(escape(line) for line in break_title(text, per_line, _names(context)))


__all__ = ["break_title", "cn_wrap", "width"]
