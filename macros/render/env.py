"""Where templates live, the jinja2 environment every output shares, and template errors in Chinese."""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import jinja2
from jinja2 import meta

from ..errors import HealthbookError
from . import fmt
from .titles import cn_wrap

CHECKOUT_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
README_HINT = "可用的变量见模板文件夹中的 README.md"


class TemplateProblem(HealthbookError):
    """A template that cannot be rendered: names the template, the tag and what to fix."""

    def __init__(self, template: str, tag: str, reason: str):
        self.template, self.tag, self.reason = template, tag, reason
        where = f"（出错的标签：{tag}）" if tag else ""
        self.what = f"模板“{template}”有误：{reason}{where}"  # without the advice, for messages that give their own
        super().__init__(f"{self.what}。请改正模板后重试；{README_HINT}。")


class TemplateMissing(HealthbookError):
    def __init__(self, name: str, folders: list[Path]):
        listed = "、".join(str(f) for f in folders)
        super().__init__(f"找不到模板“{name}”（查找了：{listed}）。请检查“设置”中的模板文件夹，或删除该设置以使用自带模板。")


def templates_dir() -> Path:
    """The shipped templates: ``templates/`` in a checkout, ``macros/templates`` in a wheel."""
    installed = Path(str(resources.files("macros").joinpath("templates")))
    # An installed wheel holds macros/templates; a checkout has templates/ beside macros/.
    return installed if installed.is_dir() else CHECKOUT_TEMPLATES


def search_path(override_dir: Path | str | None = None) -> list[Path]:
    """Folders searched for a template: the office's own copies first, then the shipped ones."""
    folders = [Path(override_dir)] if override_dir else []
    return [*folders, templates_dir()]


def find_template(name: str, override_dir: Path | str | None = None) -> Path:
    """The file of template ``name`` (e.g. ``reminder.docx``), override folder first."""
    folders = search_path(override_dir)
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    raise TemplateMissing(name, folders)


def _configure(env: jinja2.Environment) -> jinja2.Environment:
    env.filters.update(fmt.FILTERS)
    env.filters["cn_wrap"] = cn_wrap  # reads names from the context: not a plain value filter
    # "{% if summary.percent is blank %}": a blank value, as ``pct`` shows 暂无目标 (0.0 is not blank).
    env.tests["blank"] = fmt.blank
    return env


def html_environment(override_dir: Path | str | None = None) -> jinja2.Environment:
    """Autoescaping, StrictUndefined environment; ``override_dir`` (the office's own copies) first."""
    return _configure(jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(f) for f in search_path(override_dir)]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    ))


def docx_environment() -> jinja2.Environment:
    """The environment docxtpl renders with: autoescape (a bare ``&`` would corrupt the XML) and strict."""
    return _configure(jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined))


# Tags typed with a Chinese IME: full-width braces or percent signs, alone or mixed with ASCII ones.
_FULL_WIDTH_TAG = re.compile(r"[{｛][｛％]|[％｝]｝|｛[{%]|[%％]｝|％[}｝]|｛#|#｝")
_TAG = re.compile(r"{{.*?}}|{%.*?%}|{#.*?#}", re.DOTALL)
_XML = re.compile(r"<[^>]+>")


def visible_text(source: str) -> str:
    """Template source as a person sees it: XML markup (in .docx parts) removed."""
    return _XML.sub("", source)


def check_braces(text: str, template: str) -> None:
    """Refuse tags typed with full-width braces (｛｛ ｝｝): jinja would print them as plain text."""
    m = _FULL_WIDTH_TAG.search(text)
    if m:
        line_start = text.rfind("\n", 0, m.start()) + 1
        line_end = text.find("\n", m.end())
        line = text[line_start:line_end if line_end >= 0 else len(text)]
        at = m.start() - line_start
        raise TemplateProblem(
            template, line[max(at - 12, 0):at + 30].strip(),
            "标签使用了全角括号或百分号（中文输入法打出的 ｛｛ ｝｝ 或 ％），请切换到英文输入法重新输入 {{ }} 或 {% %}",
        )


def compile_template(env: jinja2.Environment, source: str, template: str,
                     variables: Iterable[str] | None = None) -> jinja2.Template:
    """Compile ``source``; unknown variables (when ``variables`` is given) and syntax errors → Chinese."""
    check_braces(visible_text(source), template)
    try:
        ast = env.parse(source)
        if variables is not None:
            unknown = sorted(meta.find_undeclared_variables(ast) - set(variables) - set(env.globals))
            if unknown:
                name = unknown[0]
                raise TemplateProblem(template, tag_naming(source, name),
                                      f"使用了未知变量“{name}”")
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise syntax_problem(exc, source, template) from exc


def syntax_problem(exc: jinja2.TemplateSyntaxError, source: str, template: str) -> TemplateProblem:
    """A jinja syntax error as a Chinese message naming the offending tag."""
    lines = source.splitlines()
    line = visible_text(lines[exc.lineno - 1]) if exc.lineno and exc.lineno <= len(lines) else ""
    tags = _TAG.findall(line)
    tag = tags[-1] if tags else line.strip()[:40]
    text = str(exc.message or "")
    inner = re.search(r"innermost block that needs to be closed is '(\w+)'", text)
    if inner:
        opened = _last_unclosed_block(visible_text(source)) or tag
        return TemplateProblem(template, opened,
                               f"标签没有配对：{{% {inner.group(1)} %}} 缺少对应的 {{% end{inner.group(1)} %}}")
    if "Unexpected end of template" in text or "unexpected end of template" in text:
        opened = _last_unclosed_block(visible_text(source))
        return TemplateProblem(template, opened or tag,
                               "标签没有配对：缺少对应的结束标签（如 {% endfor %}、{% endif %}）")
    if "Encountered unknown tag" in text:
        return TemplateProblem(template, tag, "出现了没有开始标签的结束标签，或不认识的标签")
    if "unexpected '}'" in text or "expected token" in text or "unexpected" in text:
        return TemplateProblem(template, tag, "标签写法有误（括号没有配对或缺少内容）")
    return TemplateProblem(template, tag, f"模板语法错误（{text}）")


def _last_unclosed_block(text: str) -> str | None:
    stack: list[str] = []
    for m in re.finditer(r"{%-?\s*(?:(?:tr|tc|p|r)\s+)?(\w+)[^%]*%}", text):
        word = m.group(1)
        if word in ("for", "if", "macro", "block", "with", "filter", "call"):
            stack.append(m.group(0))
        elif word.startswith("end") and stack:
            stack.pop()
    return stack[-1] if stack else None


def tag_naming(source: str, name: str, attribute: bool = False) -> str:
    """The first tag in ``source`` that mentions variable ``name`` (or ``.name`` for an attribute)."""
    before = r"\." if attribute else r"(?<![\w.])"
    pattern = re.compile(rf"{before}{re.escape(name)}(?!\w)")
    for tag in _TAG.findall(visible_text(source)):
        if pattern.search(tag):
            return tag
    return name


def undefined_problem(exc: jinja2.UndefinedError, source: str, template: str) -> TemplateProblem:
    """A StrictUndefined error (e.g. a misspelt attribute) as a Chinese message naming the tag."""
    text = str(exc.message or exc)
    attribute = re.search(r"has no attribute '([^']+)'", text)
    m = attribute or re.search(r"'([^']+)' is undefined", text)
    name = m.group(1) if m else text
    return TemplateProblem(template, tag_naming(source, name, bool(attribute)),
                           f"使用了不存在的变量或字段“{name}”")


def render_checked(template_obj: jinja2.Template, context: dict, source: str, template: str) -> str:
    """Render, turning jinja errors into TemplateProblem."""
    try:
        return template_obj.render(context)
    except jinja2.UndefinedError as exc:
        raise undefined_problem(exc, source, template) from exc
    except jinja2.TemplateError as exc:
        raise TemplateProblem(template, "", f"渲染失败（{exc}）") from exc


class HtmlTemplates:
    """HTML templates compiled once per folder (recompiled when a file changes), checked for
    unknown variables and IME braces."""

    _shared: dict[str, HtmlTemplates] = {}

    def __init__(self, override: Path | None):
        self.env = html_environment(override)
        # Checked once per run by for_folder (not on every render: each {% extends %} would stat).
        self.env.auto_reload = False
        self.stamp: tuple = ()
        self.cache: dict[str, tuple[jinja2.Template, str]] = {}

    @classmethod
    def for_folder(cls, override: Path | None, fresh: bool = True) -> HtmlTemplates:
        """The compiled templates of ``override`` + the shipped folder, recompiled when a file changed
        (``fresh=False``: as last checked in this process, without looking at the files again —
        a run's hundreds of receipts must not stat a network folder each)."""
        key = str(Path(override).resolve()) if override else ""
        templates = cls._shared.get(key)
        if not fresh and templates is not None:
            return templates
        stamp = _folder_stamp(override)
        if templates is None or templates.stamp != stamp:
            templates = cls._shared[key] = cls(override)
            templates.stamp = stamp
        return templates

    def get(self, name: str, variables: Iterable[str] | None) -> tuple[jinja2.Template, str]:
        cached = self.cache.get(name)
        if cached is None:
            try:
                source = self.env.loader.get_source(self.env, name)[0]
            except jinja2.TemplateNotFound:
                find_template(name)  # raises the Chinese TemplateMissing
                raise
            check_braces(source, name)
            try:
                template = self.env.get_template(name)
                if variables is not None:
                    allowed = set(variables) | set(self.env.globals)
                    unknown = sorted(meta.find_undeclared_variables(self.env.parse(source)) - allowed)
                    if unknown:
                        raise TemplateProblem(name, tag_naming(source, unknown[0]),
                                              f"使用了未知变量“{unknown[0]}”")
            except jinja2.TemplateSyntaxError as exc:
                bad = source if exc.name in (None, name) else self.env.loader.get_source(self.env, exc.name)[0]
                raise syntax_problem(exc, bad, exc.name or name) from exc
            self.cache[name] = (template, source)
        return self.cache[name]

    def render(self, name: str, context: dict, variables: Iterable[str] | None = None) -> str:
        template, source = self.get(name, variables)
        return render_checked(template, context, source, name)


def _folder_stamp(override: Path | None) -> tuple:
    """Names, sizes and times of the HTML templates that may be used: changes mean recompile."""
    stamp = []
    for folder in search_path(override):
        if folder.is_dir():
            for entry in sorted(folder.glob("*.html")):
                info = entry.stat()
                stamp.append((str(entry), info.st_size, info.st_mtime_ns))
    return tuple(stamp)
