"""Where templates live and the jinja2 environment every HTML output shares."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import jinja2

CHECKOUT_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def templates_dir() -> Path:
    """The shipped templates: ``templates/`` in a checkout, ``macros/templates`` in a wheel."""
    if CHECKOUT_TEMPLATES.is_dir():
        return CHECKOUT_TEMPLATES
    return Path(str(resources.files("macros").joinpath("templates")))


def html_environment(override_dir: Path | str | None = None) -> jinja2.Environment:
    """Autoescaping, StrictUndefined environment; ``override_dir`` (the office's own copies) first."""
    folders = [str(override_dir)] if override_dir else []
    folders.append(str(templates_dir()))
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(folders),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
