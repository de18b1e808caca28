"""A run's report as one HTML page: the same text as its ``tables.md``, converted by Python-Markdown.

The markdown file stays the source of truth (it reads well on a code host and in a terminal); the HTML page adds
only a stylesheet, so that a reader opens one file in a browser and sees the tables, the comparison with the
papers and the figures (PNG files beside it, linked relatively, so the run directory can be moved or zipped).
"""

from __future__ import annotations

import html
from pathlib import Path

import markdown

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1500px;
       padding: 0 1rem; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.6rem 0 1.2rem; font-size: 0.85rem;
        display: block; max-width: 100%; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.45rem; }
th { background: #f3f3f3; position: sticky; top: 0; }
tr:nth-child(even) td { background: #fafafa; }
td strong { color: #0b5394; }
code { background: #f3f3f3; padding: 0 0.2rem; border-radius: 3px; }
img { max-width: 100%; border: 1px solid #eee; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; margin-top: 2.2rem; }
"""


def markdown_to_html(text: str, title: str) -> str:
    """A complete HTML document of the markdown ``text`` (GitHub-style pipe tables included)."""
    body = markdown.markdown(text, extensions=["tables"], output_format="html")
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def write_html(text: str, path: str | Path, title: str) -> Path:
    """Write :func:`markdown_to_html` of ``text`` to ``path`` and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown_to_html(text, title), encoding="utf-8")
    return path
