"""The kit's HTML pages (the report, the runs table) rendered from their Jinja2 templates in
evaluation/templates/, HTML-escaped, and written atomically: one place that knows where templates live."""

from __future__ import annotations

from pathlib import Path

from trashseg.atomic import atomic_open


def write_page(path: Path, template: str, **context) -> Path:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("trashseg.evaluation", "templates"), autoescape=jinja2.select_autoescape()
    )
    html = env.get_template(template).render(**context)
    with atomic_open(path) as fh:
        fh.write(html)
    return path
