"""Plain-text tables for the terminal (used by the CLI and by the sweep summaries of ``trainers``), and the
same rows as an HTML table for a notebook cell (``_repr_html_`` of the result records)."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[bool] | None = None) -> str:
    """Plain-text table: columns padded to their widest cell, a dashed rule under the header."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    right = right or [False] * len(headers)

    def line(r: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if ra else c.ljust(w) for c, w, ra in zip(r, widths, right)).rstrip()

    return "\n".join([line(cells[0]), line(["-" * w for w in widths])] + [line(r) for r in cells[1:]])


def format_html_table(headers: Sequence[str], rows: Sequence[Sequence[object]], caption: str | None = None) -> str:
    """The rows as an HTML ``<table>`` (every cell escaped; ``None`` as an empty cell)."""
    import html  # not at module top: the CLI imports this module for --help, html.entities costs ~1 ms

    def cell(tag: str, value: object) -> str:
        return f"<{tag}>{'' if value is None else html.escape(str(value))}</{tag}>"

    head = "".join(cell("th", h) for h in headers)
    body = "".join("<tr>" + "".join(cell("td", c) for c in r) + "</tr>" for r in rows)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
