"""Rendering: jinja2 HTML and docxtpl Word from the templates in templates/."""
