r"""Final answers against references: what kind of answer a reference is, and whether a text
states it. Used by ``wrong_answer`` and ``think_answer_mismatch``; where a text states its
answer and what value it states is ``filters.lib.extract``.

Methods (chosen per source or per row; ``auto`` by default, from the reference):

- ``choice``: the reference is one letter A-J; the answer's letter in any usual form (``B``,
  ``(B)``, ``**B**``, ``\boxed{\text{B}}``, ``Answer: B``), or the option whose text it states.
- ``number``: the reference is one number; the answer's number in any notation (thousands
  separators, decimal commas, units, percents, fractions, non-Latin digits).
- ``math``: a symbolic reference (``\sqrt{2}``, ``(1, 2)``, ``x^2+1``): equivalence by
  math-verify, in a child process bounded in time (``MathVerifier``); its own extraction reads
  the whole answer when the span found does not match.
- ``exact``: a textual reference: equal when the answer states it (its words, normalised);
  otherwise undecided, not wrong (free text cannot be compared mechanically), except a yes/no or
  true/false reference answered with the opposite.

Under ``auto`` also: a reference that is one ``\text{}`` is its text; a letter with its value
(``(b) 1392``) accepts either; a list reference is met by the answer's last list of as many numbers
(``list_equal``); numbered short parts (``1. left 2. north-east``) are read per numbered section, a
closed-class part (compass points, left / right) from the first sentence that names one
(``parts_equal``); a negated Japanese ``-te iru`` reference against the answer's last use of the verb
(``polarity_equal``); a number stated in two units (``compound_equal``) or as the one value of a
sentence that restates the prompt's givens (``new_number_equal``); an arithmetic-expression
reference whose expression the answer states is never wrong for a slip in evaluating it.

A comparison returns ``True`` / ``False``, or ``None`` when it cannot be decided.

>>> kind("C"), kind("1,210"), kind(r"\frac{3}{4}"), kind(r"\sqrt{2}"), kind("Nitrogen")
('choice', 'number', 'number', 'math', 'exact')
>>> compare("auto", "300", "Therefore, Sophia can drive **300 miles**.", None)[0]
True
>>> compare("auto", "False, False", "Both statements are false.", None)[0] is None
True
"""

from __future__ import annotations

import multiprocessing as mp
import re
import unicodedata
from typing import Literal

from .answer_forms import (
    _ARITHMETIC,
    compound_equal,
    list_equal,
    new_number_equal,
    parts_equal,
    polarity_equal,
    ref_parts,
    states_expression,
)
from .extract import (
    final_span,
    letter,
    main_number,
    numbers,
    options,
    plain,
    same_number,
    words,
)

METHODS = ("auto", "math", "choice", "exact", "number")
AnswerMethod = Literal["auto", "math", "choice", "exact", "number"]

_SINGLE_LETTER = re.compile(r"^\(?([A-J])\)?\.?$")
_POLAR = {"yes": "no", "no": "yes", "true": "false", "false": "true", "correct": "incorrect", "incorrect": "correct"}


def kind(reference: str) -> str:
    """How a reference is compared under ``auto``: a letter, or a letter with its option's text
    (``(b) 1392``, ``C) Cylinder``), is ``choice``; see also ``parts``."""
    r = _unwrap_text(reference.strip())
    if _SINGLE_LETTER.match(r) or choice_value(r) is not None:
        return "choice"
    ns = numbers(r)
    if len(ns) == 1 and not re.search(r"[A-Za-z]{2,}|\\|[\^_{}()=+*/<>]", plain(r).replace(ns[0].text, "", 1)):
        return "number"
    if len(re.findall(r"[^\W\d_]{2,}", re.sub(r"\\[A-Za-z]+", " ", r))) >= 3:  # a phrase or sentence
        return "exact"
    if re.search(r"\\|[\^_=<>]|\d", r) or not re.search(r"[^\W\d_]{2,}", r):
        return "math"
    return "exact"


_TEXT_ONLY = re.compile(r"^\\(?:text|textbf|mathrm|mbox)\s*\{([^{}]*)\}$")
# "(b) 1392", "C) 円柱", "B: 12"; not "E. coli", "J. S. Bach" (a dot after a capital is an initial)
_CHOICE_VALUE = re.compile(r"^(?:\(([A-Ja-j])\)|([A-J])[):：])\s*(\S.*)$", re.DOTALL)


def _unwrap_text(reference: str) -> str:
    """``\\text{Evelyn}`` -> ``Evelyn``: a reference that is one text wrapper is its text."""
    m = _TEXT_ONLY.match(reference)
    return m.group(1).strip() if m else reference


def choice_value(reference: str) -> tuple[str, str] | None:
    """A reference that names an option by letter and value: ``(b) 1392`` -> ``('B', '1392')``.

    >>> choice_value("(b) 1392"), choice_value("C) 円柱"), choice_value("B"), choice_value("A cat")
    (('B', '1392'), ('C', '円柱'), None, None)
    """
    m = _CHOICE_VALUE.match(unicodedata.normalize("NFKC", reference.strip()))
    if not m:
        return None
    return (m.group(1) or m.group(2)).upper(), m.group(3).strip()


def states_text(reference: str, text: str) -> bool | None:
    """Whether ``text`` states a textual reference (its words in order); a polar reference
    (yes / no, true / false) answered only with its opposite is False; else None."""
    ref, got = words(reference), words(text)
    if not ref:
        return None
    n = len(ref)
    if any(got[i : i + n] == ref for i in range(len(got) - n + 1)):
        return True
    if n == 1 and ref[0] in _POLAR and _POLAR[ref[0]] in got and ref[0] not in got:
        return False
    return None


def choice_of(span: str | None, answer: str, prompt: str) -> str | None:
    """The option an answer picks: its letter, else the one option whose text it states."""
    got = letter(span) or letter(next((x for x in reversed(answer.strip().splitlines()) if x.strip()), None))
    if got is not None:
        return got
    opts = options(prompt)
    named = [k for k, v in opts.items() if v and states_text(v, span or answer)]
    return named[0] if len(named) == 1 else None


def same_value(reference: str, span: str) -> bool | None:
    """A numeric reference against an answer span: its main number, or (a short span) its last."""
    ref = numbers(reference)[0]
    got = main_number(span)
    if got is None:
        return None
    if same_number(got, ref):
        return True
    ns = numbers(span)
    return len(ns) <= 3 and same_number(ns[-1], ref)


def compare(method: str, reference: str, text: str, verifier, prompt: str = "") -> tuple[bool | None, str, str | None]:
    """Does ``text`` (an answer) state the ``reference``? -> (equal, or None if undecided; the
    method used; the span read as the answer, None if the text states no answer)."""
    span = final_span(text)
    if method == "auto":
        reference = _unwrap_text(reference.strip())
        pieces = ref_parts(reference)
        if pieces is not None:  # "1. left 2. north-east": each part against its section of the answer
            return parts_equal(pieces, text, prompt), "parts", span or " ".join(text.split())[:200]
    m = kind(reference) if method == "auto" else method
    if m == "choice":
        cv = choice_value(reference)
        want = cv[0] if cv else letter(reference)
        got = letter(span)
        if got is None and cv is not None:  # no letter in the answer's span: the option's value it states
            eq, used, got_span = compare("auto", cv[1], text, verifier, prompt)
            if eq is not None or got_span is None:
                return eq, f"choice/{used}", got_span
        got = got or choice_of(span, text, prompt)
        return (None if got is None or want is None else got == want), m, got or span
    if m == "exact":  # a textual reference: stated anywhere in the answer; else undecided (auto) or wrong
        eq = states_text(reference, text)
        if eq is None:
            eq = polarity_equal(reference, text)
        return (False if eq is None and method == "exact" else eq), m, span or " ".join(text.split())[:200]
    if m == "math" and list_equal(reference, text):  # a list stated inside prose or commentary
        return True, m, span or " ".join(text.split())[:200]
    if span is None:
        return None, m, None
    if m == "number" and numbers(reference):
        ref = numbers(reference)[0]
        eq = same_value(reference, span)
        if eq is None:  # the span states no number: the last number of the whole answer, if any
            ns = numbers(text)
            if not ns:
                return None, m, None
            eq = same_number(ns[-1], ref)
        if eq is False and (compound_equal(ref, span) or new_number_equal(ref, span, prompt)):
            eq = True
        return eq, m, span
    if m == "number":
        return states_text(reference, text), "exact", span
    if verifier is None:
        return None, m, span
    eq, _, _ = verifier.equal(reference, f"\\boxed{{{span}}}")
    if eq is False and span != text:  # math-verify's own reading of the whole answer
        eq2, _, _ = verifier.equal(reference, text)
        eq = eq2 if eq2 is not None else eq
    if eq is False and _ARITHMETIC.match(reference) and states_expression(reference, text, verifier):
        eq = None  # the task asks for an expression, which the answer states: a slip evaluating it is not decided
    return eq, m, span


# ----------------------------------------------------------- math-verify, bounded


def _verify_loop(conn) -> None:  # pragma: no cover - runs in the child process
    import logging

    from math_verify import parse, verify

    # it warns that its own timeouts are off: this process is the timeout
    logging.getLogger("math_verify").setLevel(logging.ERROR)

    while True:
        try:
            gold, pred = conn.recv()
        except EOFError:
            return
        try:
            g = parse(gold if ("$" in gold or "\\boxed" in gold) else f"${gold}$", parsing_timeout=None)
            if not g:
                g = parse(gold, parsing_timeout=None)
            p = parse(pred, parsing_timeout=None)
            result = (
                bool(g) and bool(p) and verify(g, p, timeout_seconds=None),
                str(g[-1]) if g else "",
                str(p[-1]) if p else "",
            )
        except Exception as e:  # noqa: BLE001 - report, never die
            result = (False, "", f"error: {type(e).__name__}")
        conn.send(result)


class MathVerifier:
    """math-verify in a child process with a wall-clock bound per comparison.

    ``equal`` returns True / False, or None when the comparison overran ``timeout_s`` (the child is
    killed and a fresh one starts on the next call).
    """

    def __init__(self, timeout_s: float = 5.0):
        self.timeout_s = timeout_s
        self._proc = None
        self._conn = None
        self._warm = False  # the first call of a fresh child also pays its start-up (importing sympy)

    def _start(self) -> None:
        ctx = mp.get_context("spawn")  # no fork: Ray workers and vLLM hold threads
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_verify_loop, args=(child,), daemon=True)
        self._proc.start()
        child.close()
        self._warm = False

    def equal(self, gold: str, pred: str) -> tuple[bool | None, str, str]:
        """(equivalent?, gold as parsed, prediction as parsed)."""
        if self._proc is None or not self._proc.is_alive():
            self._start()
        self._conn.send((gold, pred))
        if self._conn.poll(self.timeout_s + (0 if self._warm else 10)):
            self._warm = True
            return self._conn.recv()
        self.close()
        return None, "", ""

    def close(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join()
        self._proc, self._conn = None, None

    def __del__(self):
        self.close()
