"""Where a text states its answer, and what value it states: one extractor for the final answer
(``wrong_answer``) and for the thinking's conclusion (``think_answer_mismatch``).

Real teachers state answers in many ways: ``\\boxed{}`` (nested, several, with units or text),
"The answer is **(C) Nitrogen**", "**Answer:** 12", "答案是 13", "答え：12個", "Ответ: 42 рубля",
a bare letter after the think block. ``final_span`` finds the span in this order: the last
``\\boxed{}`` / ``\\fbox{}``; the last answer phrase of any of the languages in ``ANCHORS`` that
states a value; the last line holding a value; the last answer phrase followed by words only.
``numbers`` then reads the values in a span whatever the notation: thousands separators (``1,210``,
``1.250``, ``276 000``, ``57,\\!500``), decimal commas (``3,5``, ``0{,}75``), full-width and non-Latin
digits (``１２``, ``৪৫``, ``١٢``), percents, fractions (``\\dfrac{3}{4}``, ``3/4``); a notation that reads
two ways (``1,210``, ``1.250``) keeps both readings. ``letter`` reads a multiple-choice letter in its usual forms.

Everything here is linear in the text length (the balanced-brace scan included) and pure.

>>> final_span("<b>So</b> \\\\boxed{12\\\\text{ apples}}. Done.")
'12\\\\text{ apples}'
>>> final_span("计算得 36 ÷ 3 = 12\\n\\n所以答案为：**12**")
'**12**'
>>> [n.values for n in numbers("Réponse : 34,00 € pour 1.250 g")]
[(34.0,), (1250.0, 1.25)]
>>> letter("The correct option is **(B)** Mitochondria.")
'B'
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import NamedTuple

from .text import last_boxed

# "the answer is" in the languages prompts come in (case-insensitive); the span starts after it
ANCHORS = [
    r"final answer(?: is)?",
    r"(?:the )?(?:correct |right )?answer(?: is| would be| should be)?",
    r"(?:the )?correct (?:option|choice) is",
    r"(?:the )?(?:option|choice) is",
    r"最终答案(?:是|为)?",
    r"(?:正确)?答案(?:是|为|应该是|应为)?",
    r"答(?=[：:])",
    r"答え(?:は)?",
    r"解答",
    r"正解(?:は)?",
    r"정답(?:은|는)?",
    r"답(?:은|는)?(?=\s*[:：]|\s)",
    r"(?:die )?(?:richtige )?antwort(?: ist| lautet)?",
    r"(?:die )?lösung(?: ist| lautet)?",
    r"(?:la )?(?:bonne )?réponse(?: finale)?(?: est)?",
    r"(?:la )?respuesta(?: correcta| final)?(?: es)?",
    r"(?:a )?resposta(?: correta| final)?(?: é)?",
    r"(?:la )?risposta(?: corretta)?(?: è)?",
    r"(?:правильный )?ответ(?: —| -| равен| будет)?",
    r"(?:সঠিক )?উত্তর",
    r"คำตอบ(?:คือ)?",
    r"ตอบ",
    r"(?:ال)?(?:إجابة|جواب)(?: الصحيحة)?(?: هي)?",
]
_ANCHOR = re.compile(r"(?<![A-Za-zÀ-ɏЀ-ӿ])(?:" + "|".join(ANCHORS) + r")\s*(?:\*\*)?\s*[:：=]?\s*", re.IGNORECASE)
_SPAN_END = re.compile(r"\n\s*\n|(?<![\d.])[.。!！](?=\s|$)|\n(?=\s*(?:[-*#|]|\d+[.)]\s))")
_HAS_VALUE = re.compile(r"\d|\\frac|(?<![A-Za-z])[A-J](?![A-Za-z])", re.UNICODE)


def has_value(span: str) -> bool:
    """Whether a span states a number (also in words) or an option letter."""
    return bool(_HAS_VALUE.search(span) or _NUMBER_WORDS.search(span))


def anchored(text: str) -> str | None:
    """The span after the last answer phrase (``ANCHORS``) that states a value (a number, a
    letter), else after the last one followed by any text."""
    valued = worded = None
    for m in _ANCHOR.finditer(text):
        rest = text[m.end() : m.end() + 300]
        end = _SPAN_END.search(rest)
        span = _unwrap(rest[: end.start()] if end else rest)
        if span.strip(" *:：#"):
            worded = span
            if _HAS_VALUE.search(span) or _LEADING_WORDS.match(span):  # "the answer is three." states a value
                valued = span
    return valued or worded


def _unwrap(span: str) -> str:
    """A span cut out of markdown: an emphasis marker left open at either end is dropped."""
    if span.count("**") % 2:
        span = span[2:] if span.startswith("**") else span.removesuffix("**")
    return span.strip().rstrip(".。!！").strip()


def final_span(text: str, stated: bool = False) -> str | None:
    """Where ``text`` states its answer (see the module docstring), or None. ``stated``: only
    a box or an answer phrase, not a last line that merely holds a value."""
    box = last_boxed(text)
    if box is not None:
        return box.strip()
    span = anchored(text)
    if span is not None and (_HAS_VALUE.search(span) or _LEADING_WORDS.match(span)):
        return span
    if stated:
        return None
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line and _HAS_VALUE.search(line) and not line.startswith(("$$", "\\[", "\\]")):
            return line
    return span  # an answer phrase followed by words only (a textual answer)


# ----------------------------------------------------------------------------- values

_SPACING = re.compile(r"\\[,!;: ]|\\q?quad|~|\{,\}|\\(?:text|mathrm|textbf|mathbf|operatorname)\s*\{([^{}]*)\}")
_FRAC = re.compile(
    r"(-)?\\[dt]?frac\s*\{\s*(-?\d+(?:\.\d+)?)\s*\}\s*\{\s*(-?\d+(?:\.\d+)?)\s*\}"
    r"|(?<![\d.,])(-?\d+)\s*/\s*(\d+)(?!\d|[.,]\d)"
)
_FRAC_SHORT = re.compile(r"\\[dt]?frac\s*(\d)\s*(\d)")
_GROUP_SPACE = re.compile(r"(?<=\d)[ \u00a0\u2009\u202f](?=\d{3}(?!\d))")
_NUM = re.compile(r"(?<![A-Za-z0-9_.])[-−]?\d+(?:[.,']\d+)*(?:\s*%)?", re.UNICODE)


_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
).split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
_WORDS = {w: i for i, w in enumerate(_UNITS)} | {w: 20 + 10 * i for i, w in enumerate(_TENS)}
_NUMBER_WORDS = re.compile(
    r"\b(?:"
    + "|".join(list(_WORDS) + list(_SCALES))
    + r")(?:(?:[\s-]+|\s+and\s+)(?:"
    + "|".join(list(_WORDS) + list(_SCALES))
    + r"))*\b",
    re.IGNORECASE,
)

#: a span that opens with a number in words (the answer phrase's value: "the answer is three.")
_LEADING_WORDS = re.compile(
    r"\W*(?:(?:exactly|simply|just)\s+)?" + _NUMBER_WORDS.pattern + r"(?!\s+of\b)", re.IGNORECASE
)


def word_value(phrase: str) -> float | None:
    """An English number in words ("twelve", "one million", "twenty-one") -> its value.

    >>> word_value("one million"), word_value("Twenty-one"), word_value("three hundred and five")
    (1000000.0, 21.0, 305.0)
    """
    total = current = 0
    for w in re.split(r"[\s-]+", phrase.lower()):
        if w == "and":
            continue
        if w in _WORDS:
            current += _WORDS[w]
        elif w == "hundred":
            current = max(current, 1) * 100
        elif w in _SCALES:
            total += max(current, 1) * _SCALES[w]
            current = 0
        else:
            return None
    return float(total + current)


class Number(NamedTuple):
    text: str
    values: tuple[float, ...]  # every reading of the notation (two when it is ambiguous)


_WORD_CHARS = re.compile(r"[^\W_]+", re.UNICODE)


def words(s: str) -> list[str]:
    """The words of ``s`` (letters and digits, NFKC-normalised, case-folded), for text comparisons."""
    return [w.casefold() for w in _WORD_CHARS.findall(unicodedata.normalize("NFKC", plain(s)))]


def plain(s: str) -> str:
    """``s`` with digits made ASCII (``１２`` ``৪৫`` ``١٢`` -> ``12 45 12``), LaTeX spacing and
    text wrappers removed, markdown emphasis dropped."""
    s = "".join(
        str(unicodedata.decimal(c))
        if c.isdigit() and not c.isascii() and unicodedata.decimal(c, None) is not None
        else c
        for c in unicodedata.normalize("NFKC", s)
    )
    s = _FRAC_SHORT.sub(r"\\frac{\1}{\2}", s)  # \dfrac12 -> \frac{1}{2}
    s = _SPACING.sub(
        lambda m: m.group(1) if m.group(1) is not None else {"{,}": ",", "\\!": ""}.get(m.group(0), " "), s
    )
    s = s.replace("−", "-").replace("\\%", "%").replace("\\$", "$").replace("^\\circ", "°").replace("^{\\circ}", "°")
    return re.sub(r"\*\*|__|`", "", s)


def _readings(tok: str) -> tuple[float, ...]:
    pct = tok.endswith("%")
    t = tok.rstrip("%").strip().replace("'", "")
    neg = t.startswith("-")
    t = t.lstrip("-")
    dots, commas = t.count("."), t.count(",")
    out: list[float] = []
    if dots and commas:  # the last separator is the decimal one
        dec = "." if t.rfind(".") > t.rfind(",") else ","
        out.append(float(t.replace("," if dec == "." else ".", "").replace(dec, ".")))
    elif dots + commas == 0:
        out.append(float(t))
    else:
        sep = "." if dots else ","
        parts = t.split(sep)
        grouped = all(len(p) == 3 for p in parts[1:]) and 1 <= len(parts[0]) <= 3
        if len(parts) > 2:
            if grouped:
                out.append(float("".join(parts)))
        else:
            if grouped:  # 1,210 / 1.250: thousands in one convention, a decimal in the other
                out.append(float("".join(parts)))
            out.append(float(".".join(parts)))
    out = [v for v in out if math.isfinite(v)]  # 400 digits read as inf would equal every number
    if neg:
        out = [-v for v in out]
    if pct:
        out = out + [v / 100 for v in out]
    return tuple(dict.fromkeys(out))


def numbers(span: str) -> list[Number]:
    """The numbers a span states, in order, each with its readings (fractions as their value)."""
    s = _GROUP_SPACE.sub("", plain(span))
    found: list[tuple[int, Number]] = []
    for m in _FRAC.finditer(s):
        if m.group(2) is not None:
            a, b = float(m.group(2)), float(m.group(3))
            neg = -1 if m.group(1) else 1
        else:
            a, b, neg = float(m.group(4)), float(m.group(5)), 1
        if b:
            found.append((m.start(), Number(m.group(0), (neg * a / b,))))
    taken = {i for m in _FRAC.finditer(s) for i in range(m.start(), m.end())}
    for m in _NUM.finditer(s):
        if m.start() in taken:
            continue
        try:
            found.append((m.start(), Number(m.group(0), _readings(m.group(0)))))
        except ValueError:
            continue
    if not found:  # no digits: numbers written in words ("twelve", "one million")
        for m in _NUMBER_WORDS.finditer(s):
            if (v := word_value(m.group(0))) is not None:
                found.append((m.start(), Number(m.group(0), (v,))))
    return [n for _, n in sorted(found, key=lambda x: x[0])]


def main_number(span: str) -> Number | None:
    """The number a span gives as its answer: in bold, else after its last ``=``, else the first."""
    bold = re.findall(r"\*\*(.+?)\*\*", span)
    for part in reversed(bold):
        if ns := numbers(part):
            return ns[0]
    s = plain(span)
    if "=" in s:
        if ns := numbers(s.rsplit("=", 1)[1]):
            return ns[0]
    ns = numbers(s)
    return ns[0] if ns else None


def same_number(a: Number, b: Number, rel: float = 1e-6) -> bool:
    return any(abs(x - y) <= max(1e-9, rel * max(abs(x), abs(y))) for x in a.values for y in b.values)


# ----------------------------------------------------------------------------- letters

_LETTER_FORMS = [
    re.compile(r"^\W*\(?([A-J])\)?\W*$"),  # B, (B), **B**, B.
    re.compile(r"\\text(?:bf)?\{\s*\(?([A-J])\)?\s*\}"),  # \text{B}
    # (B) text, B) text, B. text
    re.compile(r"(?:^|[\s*(【「:：])\(?([A-J])\)?(?:[.)(:：、]|\*\*|\s*$|\s+[-–—:]|\s)", re.MULTILINE),
]


def letter(span: str | None) -> str | None:
    """A multiple-choice letter stated in ``span`` (the first of its usual forms), or None."""
    if not span:
        return None
    s = plain(span).strip()
    for form in _LETTER_FORMS:
        for m in form.finditer(s):
            if m.group(1) == "I" and re.match(
                r"\s*(?:[a-z']|am\b)", s[m.end(1) + (s[m.end(1) : m.end(1) + 1] == ")") :]
            ):
                continue  # the pronoun: "I choose", "I'm"
            return m.group(1)
    m = re.search(r"(?<![A-Za-z])\(([a-j])\)", s)  # "(b)"
    return m.group(1).upper() if m else None


_OPTION = re.compile(r"(?:^|\s)\(?([A-J])[).:：]\s*([^\n]+?)(?=\s+\(?[A-J][).:：]\s|\n|$)", re.MULTILINE)


def options(prompt: str) -> dict[str, str]:
    """The answer options a multiple-choice prompt lists (``A) ...``, ``(B) ...``, ``C. ...``)."""
    return {m.group(1): m.group(2).strip().rstrip(".;,") for m in _OPTION.finditer(prompt or "")}
