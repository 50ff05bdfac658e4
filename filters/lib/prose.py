"""What of a text is prose: code, LaTeX, URLs, numbers, identifiers and quotations removed, the
words of a formula's ``\\text{}`` kept. The language filters judge only this (``langid``)."""

from __future__ import annotations

import re

_STRIP = [
    re.compile(r"```.*?(```|$)", re.S),  # fenced code (also unterminated)
    re.compile(r"`[^`\n]*`"),  # inline code
    # display / inline LaTeX; bounded, so an opener never closed costs a bounded scan, not the whole text
    re.compile(r"\$\$.{0,4000}?\$\$|\\\[.{0,4000}?\\\]|\\\(.{0,1000}?\\\)", re.S),
    re.compile(r"\$[^$\n]*\$"),
    re.compile(r"\\[A-Za-z]+(\{[^{}]*\})*"),  # \commands with their arguments
    # identifiers, numbers, camelCase (ASCII \b and classes: \w would also eat adjacent CJK text)
    re.compile(r"\b[A-Za-z]*(?:[0-9_]|[a-z][A-Z])[A-Za-z0-9_]*\b", re.ASCII),
]
_URL = re.compile(r"https?://\S+|www\.\S+|[^\s@]+@[^\s@]+\.\w+")  # URLs, e-mails (only run when present)
# quotations, each pattern only run when its opening mark is in the text
_QUOTED = [
    (q, re.compile(rx))
    for q, rx in (
        ('"', r'"[^"\n]{1,200}"'),
        ("“", r"“[^”\n]{1,200}”"),
        ("„", r"„[^“”\n]{1,200}[“”]"),
        ("«", r"«[^»\n]{1,200}»"),
        ("「", r"「[^」\n]{1,200}」"),
        ("『", r"『[^』\n]{1,200}』"),
        ("'", r"(?<![A-Za-z])'[^'\n]{1,60}'(?![A-Za-z])"),
    )
]
_TEXT_FENCE = re.compile(r"```(?:text|plaintext|txt|markdown|md)[ \t]*\n(.*?)(?:```|$)", re.S)
_TEXT_ARG = re.compile(r"\\(?:text|textbf|textit|mbox|mathrm|operatorname)\{([^{}$]*)\}")


def _math(m: re.Match) -> str:
    """A formula is not prose, but the words in its ``\\text{}`` are (``\\text{Anne's次数}``)."""
    return " " + " ".join(_TEXT_ARG.findall(m.group())) + " " if "\\" in m.group() else " "


def prose(text: str) -> str:
    """``text`` without what is not prose (code, LaTeX, URLs, numbers, identifiers, quotations).
    The words of a formula's ``\\text{}`` stay: they are written language, not symbols.

    >>> " ".join(prose(r"So $\\text{total} = 3x$ and `code()` here").split())
    'So total and here'
    """
    if "```" in text:  # a fence labelled as plain text or markdown holds prose, not code
        text = _TEXT_FENCE.sub(r" \1 ", text)
    for i, pattern in enumerate(_STRIP[:-1]):
        text = pattern.sub(_math if i in (2, 3) else " ", text)
    for mark, quoted in _QUOTED:
        if mark in text:
            text = quoted.sub(" ", text)
    if "://" in text or "www." in text or "@" in text:
        text = _URL.sub(" ", text)
    return _STRIP[-1].sub(" ", text)
