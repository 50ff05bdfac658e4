"""Whether a result the thinking states and the answer's are the same: choices as choices,
statements as statements ("A is a knight ..."), prose as text, values as numbers (``agree``), and
the results a sentence states (``results``). Used by ``conclusion.judge_conclusion``."""

from __future__ import annotations

import re

from .answers import choice_of, states_text
from .extract import main_number, numbers, plain, same_number

BOX_OPEN = re.compile(r"\\(?:boxed|fbox)\s*\{")


def wordy(span: str) -> bool:
    """A span of prose (more than a dozen words): a statement to compare as text, not a value."""
    return len(re.findall(r"[^\W\d_]{2,}", BOX_OPEN.sub(" ", span))) > 12


_LABELS = re.compile(
    r"\b(?:options?|choices?|statements?|cases?|steps?|methods?|parts?|scenarios?|approach(?:es)?|"
    r"interpretations?|possibilit(?:y|ies))\s*\(?(?:\d|[ivx]+\b)",
    re.IGNORECASE,
)
_WORD_DIGITS = re.compile(r"(?<=[A-Za-z]{2})(?=\d)")  # "day20" -> "day 20"
# "A is a knight", "statement 2 is false": who is what
_ASSIGN = re.compile(
    r"(?<![\w])([A-Z]|(?:statement|person|player|suspect|door|box)\s+\w+)\s+(?:is|was|:)\s+"
    r"(?:an?\s+|the\s+)?(not\s+)?([A-Za-z][A-Za-z-]*)",
    re.IGNORECASE,
)


def assignments(text: str) -> dict[str, str]:
    """What a statement says each named thing is ("A is a Knight and B is a Knave").

    >>> assignments("A is a Knight and B is a Knave")
    {'a': 'knight', 'b': 'knave'}
    """
    return {m.group(1).lower(): ((m.group(2) or "") + m.group(3)).lower() for m in _ASSIGN.finditer(plain(text))}


def first_clause(span: str) -> str:
    """ "the minimum is -5, attained at x = -3" -> "the minimum is -5" """
    return re.split(r"[,，;；]\s+(?=\D)", span, maxsplit=1)[0]


def agree(
    concluded: str, stated: str, prompt: str, verifier, choice: bool, textual: bool = False, strict: bool = False
) -> tuple[bool | None, str]:
    """Whether two stated values are the same value -> (equal or None if undecided, how): choices
    as choices, statements as statements ("A is a knight ..."), values as numbers; ``strict``:
    only the main values, not any result the two share."""
    if choice:
        a, b = choice_of(concluded, concluded, prompt), choice_of(stated, stated, prompt)
        return (None if a is None or b is None else a == b), "choice"
    ca, cb = assignments(concluded), assignments(stated)
    shared = ca.keys() & cb.keys()
    if len(shared) >= 2 or (shared and len(ca) == len(cb) == 1 and not numbers(concluded)):
        return all(ca[k] == cb[k] for k in shared), "statements"
    # "option 2", "case 3": names, not values
    if textual or wordy(stated) or _LABELS.search(concluded) or _LABELS.search(stated):
        return (True, "exact") if states_text(stated, concluded) or states_text(concluded, stated) else (None, "text")
    concluded, stated = _WORD_DIGITS.sub(" ", concluded), _WORD_DIGITS.sub(" ", stated)
    na, nb = main_number(concluded), main_number(stated)
    if na is not None and nb is not None:
        if same_number(na, nb):
            return True, "number"
        # a conclusion or an answer that states a few results ("the minimum is 3, at x = 2",
        # "5 tickets cost 34,00 $"): a value they share is agreement
        return not strict and any(same_number(x, y) for x in results(concluded) for y in results(stated)), "number"
    if states_text(stated, concluded) or states_text(concluded, stated):
        return True, "exact"
    if verifier is not None and "\\" in concluded and "\\" in stated:
        eq, _, _ = verifier.equal(concluded, f"\\boxed{{{stated}}}")
        return eq, "math"
    return None, "undecided"


_RESULT = re.compile(
    r"(?:=|≡|\\equiv|→|⇒|\\Rightarrow|\\implies|\bis|\bare|\bequals|\bgives|\bmakes"
    r"|是|为|為|は|равно|\bist|\best|\bes|\bson|:|：)\s*\$?\s*"
    r"(-?\d[\d.,]*(?:\s*/\s*\d+)?|\\[dt]?frac\{[^{}]*\}\{[^{}]*\})",
    re.IGNORECASE,
)


def results(sentence: str) -> list:
    """The values a sentence states as results: after ``=``, "is", "是", "は", ... (not the
    operands on the way), else its main number.

    >>> [n.values[0] for n in results("Divide by 4: x = 5.")]
    [5.0, 5.0]
    >>> [n.values[0] for n in results("最小值是3，在 x = 2 处取得")]
    [3.0, 2.0, 2.0]
    """
    text = plain(sentence)
    found = [n for m in _RESULT.finditer(text) for n in numbers(m.group(1))[:1]]
    every = numbers(text)
    if not found:  # no "=" or "is": every number it states ("1人12個です", "10번째 수는 1024")
        return every
    return found + every[-1:]  # and its last ("... ≡ 3")
