"""The report page's parts: the document with its inline style, tables, and the count cells.

Every count the report shows that is a ``summary.json`` value is rendered by ``num`` inside an
element carrying that value's key path (``data-key``, a JSON list) so a test (or a reader's
script) can check the page against the summary; a count the page adds up from a summary block
carries that block's path in ``data-sum`` instead.
"""

from __future__ import annotations

import json
from html import escape

CSS = """
body{font-family:"DejaVu Sans",Arial,sans-serif;margin:0;background:#f5f6f8;color:#222;font-size:14px}
header{background:#263238;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:22px} header p{margin:0;color:#cfd8dc} header a{color:#90caf9}
main{max-width:1240px;margin:0 auto;padding:12px 24px 40px}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;margin:16px 0;padding:14px 18px}
h2{font-size:17px;margin:0 0 10px;color:#263238} h3{font-size:14px;margin:12px 0 6px;color:#37474f}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:6px 0}
.tile{flex:1 1 120px;border:1px solid #dde1e6;border-radius:6px;padding:8px 12px;background:#fafbfc}
.tile b{display:block;font-size:20px} .tile span.l{color:#607d8b;font-size:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:14px}
table{border-collapse:collapse;margin:4px 0 10px;font-size:13px}
th,td{border-bottom:1px solid #e6e9ed;padding:3px 10px;text-align:right;vertical-align:top}
th{background:#eceff1;color:#37474f} td:first-child,th:first-child{text-align:left}
.bar{display:inline-block;height:10px;border-radius:2px;vertical-align:middle} .bw{text-align:left}
details>summary{cursor:pointer;font-weight:bold;color:#37474f;margin:10px 0 4px}
.note{color:#607d8b;font-size:12px;margin:4px 0}
.ok{color:#2e7d32;font-weight:bold} .bad{color:#c62828;font-weight:bold}
.up{color:#2e7d32} .down{color:#c62828}
.ex{border-left:4px solid #ef6c00;background:#fff8f0;margin:8px 0;padding:6px 10px}
.ex.err{border-color:#7b1fa2;background:#faf5fc}
.ex pre,pre.cfg{white-space:pre-wrap;word-break:break-word;margin:3px 0;font-size:12px;
  font-family:"DejaVu Sans Mono",monospace;background:#fbfbfb;padding:4px 6px;border:1px solid #eee}
pre.cfg{max-height:520px;overflow:auto}
.k{color:#546e7a;font-size:12px} .side{display:grid;grid-template-columns:1fr 1fr;gap:14px}
.chart{max-width:760px} table.left td{text-align:left}
"""


def esc(value) -> str:
    """Text for the page, escaped.

    >>> esc('<script>alert("x")</script>')
    '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'
    """
    return escape("" if value is None else str(value))


def _path(key) -> str:
    """A key path as JSON (a None key as summary.json writes it: ``null``)."""
    return escape(json.dumps(["null" if k is None else str(k) for k in key]), quote=True)


def num(value, key=None, run: str | None = None, total: bool = False) -> str:
    """A count, with the key path of the summary value it shows (``total``: the sum of the block
    at that path); ``run`` names which run's summary in a comparison.

    >>> num(1234, ("rejected", "by_reason", "wrong_answer"))
    '<span class="n" data-key="[&quot;rejected&quot;, &quot;by_reason&quot;, &quot;wrong_answer&quot;]">1,234</span>'
    """
    text = f"{value:,}" if isinstance(value, int) else esc(value)
    if key is None:
        return f'<span class="n">{text}</span>'
    run_attr = f' data-run="{esc(run)}"' if run else ""
    return f'<span class="n" data-{"sum" if total else "key"}="{_path(key)}"{run_attr}>{text}</span>'


def share(n: int, total: int) -> str:
    return f"{n / total:.1%}" if total else "-"


def bar(n: float, top: float, colour: str, width: int = 160) -> str:
    """An inline bar: ``n`` of ``top`` as a share of ``width`` pixels."""
    px = 0 if top <= 0 else max(1, round(width * n / top)) if n else 0
    return f'<div class="bw"><span class="bar" style="width:{px}px;background:{colour}"></span></div>'


def table(head: list[str], rows: list[list[str]], cls: str = "") -> str:
    """A table of HTML cells (already escaped or built by ``num``)."""
    if not rows:
        return '<p class="note">none</p>'
    start = f'<table class="{cls}">' if cls else "<table>"
    return (
        start
        + ("<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>" if any(head) else "")
        + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
        + "</table>"
    )


def section(ident: str, title: str, body: str) -> str:
    return f'<section id="{esc(ident)}"><h2>{esc(title)}</h2>{body}</section>'


def tile(label: str, value: str, note: str = "") -> str:
    return (
        f'<div class="tile"><span class="l">{esc(label)}</span><b>{value}</b>'
        + (f'<span class="l">{note}</span>' if note else "")
        + "</div>"
    )


def clip(text, limit: int) -> str:
    """``text`` escaped and cut to ``limit`` characters (head and tail kept), saying how much was cut.

    >>> clip("<b>" + "x" * 50, 20)
    '&lt;b&gt;xxxxxxxxxx … [33 characters cut] … xxxxxxx'
    """
    text = "" if text is None else str(text)
    if len(text) <= limit:
        return esc(text)
    head, tail = text[: limit * 2 // 3], text[-(limit - limit * 2 // 3) :]
    return f"{esc(head)} … [{len(text) - len(head) - len(tail)} characters cut] … {esc(tail)}"


def document(title: str, subtitle: str, body: str) -> str:
    """The whole page: one file, its style inline, no script, nothing fetched."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{esc(title)}</title>'
        f"<style>{CSS}</style></head><body><header><h1>{esc(title)}</h1><p>{subtitle}</p></header>"
        f"<main>{body}</main></body></html>\n"
    )
