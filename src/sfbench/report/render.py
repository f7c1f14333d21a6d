"""A small document model rendered both as Markdown and as self-contained HTML.

A report is a list of blocks: headings, paragraphs, tables (a DataFrame) and
figures (PNG bytes). The Markdown links the figures as files; the HTML embeds
them as base64 data URIs, so the one file can be mailed or opened offline.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass

import pandas as pd


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Paragraph:
    text: str  # plain text; `code` spans are kept as code in both outputs


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    frame: pd.DataFrame
    caption: str = ""


@dataclass
class Figure:
    name: str  # file name under figures/
    png: bytes
    caption: str


@dataclass
class Details:
    """A titled group of blocks the HTML shows collapsed (``<details>``; the Markdown shows
    a heading and the blocks)."""

    title: str
    blocks: list
    level: int = 2


Block = Heading | Paragraph | Bullets | Table | Figure | Details


def fmt(value) -> str:
    """A cell as text: 4 significant digits for floats, an en dash for missing values."""
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3e}"
        return f"{value:.4g}"
    return str(value)


def _md_cell(value) -> str:
    return fmt(value).replace("|", "\\|").replace("\n", " ")


def _code_spans_html(text: str) -> str:
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def to_markdown(title: str, blocks: list[Block]) -> str:
    return "\n".join([f"# {title}", "", *_markdown_lines(blocks)]).rstrip() + "\n"


def _markdown_lines(blocks: list[Block]) -> list[str]:
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Details):
            lines += ["#" * block.level + " " + block.title, ""]
            lines += _markdown_lines(block.blocks)
        elif isinstance(block, Heading):
            lines += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Paragraph):
            lines += [block.text, ""]
        elif isinstance(block, Bullets):
            lines += [f"- {item}" for item in block.items] + [""]
        elif isinstance(block, Table):
            frame = block.frame
            if block.caption:
                lines += [f"*{block.caption}*", ""]
            header = [str(c) for c in frame.columns]
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "|".join("---" for _ in header) + "|")
            for row in frame.itertuples(index=False):
                lines.append("| " + " | ".join(_md_cell(v) for v in row) + " |")
            lines.append("")
        elif isinstance(block, Figure):
            lines += [f"![{block.caption}](figures/{block.name})", "", f"*{block.caption}*", ""]
    return lines


CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em;
       color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
caption { caption-side: top; text-align: left; font-style: italic; padding: 0.25em 0; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-style: italic; font-size: 0.9em; }
code { background: #f4f4f4; padding: 0 0.2em; }
summary { cursor: pointer; }
summary .summary { display: inline; }
"""


def to_html(title: str, blocks: list[Block]) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        *_html_lines(blocks),
        "</body></html>",
    ]
    return "\n".join(out) + "\n"


def _html_lines(blocks: list[Block]) -> list[str]:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Details):
            level = block.level
            out.append(f'<details><summary><h{level} class="summary">'
                       f"{html.escape(block.title)}</h{level}></summary>")
            out += _html_lines(block.blocks)
            out.append("</details>")
        elif isinstance(block, Heading):
            out.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            out.append(f"<p>{_code_spans_html(block.text)}</p>")
        elif isinstance(block, Bullets):
            items = "".join(f"<li>{_code_spans_html(i)}</li>" for i in block.items)
            out.append(f"<ul>{items}</ul>")
        elif isinstance(block, Table):
            frame = block.frame
            rows = ["<table>"]
            if block.caption:
                rows.append(f"<caption>{html.escape(block.caption)}</caption>")
            rows.append(
                "<thead><tr>"
                + "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
                + "</tr></thead><tbody>"
            )
            for row in frame.itertuples(index=False):
                rows.append(
                    "<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in row) + "</tr>"
                )
            rows.append("</tbody></table>")
            out.append("".join(rows))
        elif isinstance(block, Figure):
            data = base64.b64encode(block.png).decode("ascii")
            alt = html.escape(block.caption)
            out.append(
                f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">'
                f"<figcaption>{alt}</figcaption></figure>"
            )
    return out
