"""Final answers: extract them, compare them. Used by ``wrong_answer`` and ``think_answer_mismatch``.

Comparison methods (chosen per source or per row, ``auto`` by default):

- ``math``: equivalence with math-verify (gold first; ``\\boxed{}`` preferred; ``0.5``,
  ``\\frac{1}{2}`` and ``1/2`` agree). math-verify bounds its time with ``signal.alarm``, which
  only works on a process's main thread, and Ray runs our code elsewhere; so it runs in a child
  process that is killed when it overruns (``MathVerifier``): a hung sympy call costs one
  timeout, never the stage.
- ``choice``: multiple-choice letters (``B``, ``(B)``, ``\\boxed{B}``, ``answer is B``).
- ``exact``: normalized strings (case, whitespace, ``\\text{}``, ``$``, trailing punctuation).
- ``number``: numbers with tolerance (commas, ``%``, ``\\boxed{}`` stripped).
- ``auto``: ``choice`` if the reference is one letter A-J, ``number`` if both sides read as plain
  numbers (no child process needed), else ``math``.

>>> extract_final("so \\\\boxed{12}. The answer is 13")
'12'
>>> extract_final("The answer is 42.")
'42'
>>> extract_final("答案是 7。")
'7'
>>> normalize_text(" \\\\text{Paris}. ")
'paris'
>>> choice_letter("I pick (c) because ...")
'C'
>>> as_number("1,234.5")
1234.5
"""

from __future__ import annotations

import math
import multiprocessing as mp
import re

from typing import Literal

from .text import last_boxed

METHODS = ("auto", "math", "choice", "exact", "number")
AnswerMethod = Literal["auto", "math", "choice", "exact", "number"]

_ANSWER_IS = re.compile(
    r"(?:final answer|answer)\s*(?:is|:|=)\s*[:：]?\s*(.+?)\s*(?:$|\n|(?<=\S)[.。](?:\s|$))"
    r"|答案(?:是|为|：|:)\s*(.+?)\s*(?:$|\n|[。.](?:\s|$))",
    re.IGNORECASE)
_NUMBER = re.compile(r"^[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?%?$")
_LETTER = re.compile(r"^\(?([A-Ja-j])\)?[.:)]?$")
_LETTER_IN_TEXT = re.compile(r"(?:answer|option|choice|pick|choose|答案|选)[^A-Za-z\n]{0,12}\(?([A-Ja-j])\)?(?![A-Za-z])",
                             re.IGNORECASE)


def extract_final(text: str) -> str | None:
    """The answer a text states: its last ``\\boxed{}``, else its last "the answer is X"."""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed.strip()
    found = None
    for m in _ANSWER_IS.finditer(text):
        found = (m.group(1) or m.group(2) or "").strip()
    return found or None


def normalize_text(s: str) -> str:
    s = re.sub(r"\\text\{([^}]*)\}", r"\1", s)
    s = s.replace("$", "").strip().rstrip(".。!！")
    return re.sub(r"\s+", " ", s).strip().lower()


def as_number(s: str | None) -> float | None:
    if s is None:
        return None
    t = normalize_text(s).replace(" ", "")
    t = re.sub(r"^\\boxed\{(.*)\}$", r"\1", t)
    if not t or not _NUMBER.match(t) or not any(c.isdigit() for c in t):
        return None
    pct = t.endswith("%")
    v = float(t.rstrip("%").replace(",", ""))
    return v / 100 if pct else v


def choice_letter(s: str | None) -> str | None:
    if s is None:
        return None
    m = _LETTER.match(s.strip())
    if m:
        return m.group(1).upper()
    boxed = last_boxed(s)
    if boxed and (m := _LETTER.match(boxed.strip())):
        return m.group(1).upper()
    hits = _LETTER_IN_TEXT.findall(s)
    return hits[-1].upper() if hits else None


def pick_method(method: str, reference: str, answer: str | None) -> str:
    if method != "auto":
        return method
    if _LETTER.match(reference.strip()):
        return "choice"
    if as_number(reference) is not None and as_number(answer) is not None:
        return "number"
    return "math"


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
            result = (bool(g) and bool(p) and verify(g, p, timeout_seconds=None), str(g[-1]) if g else "",
                      str(p[-1]) if p else "")
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


def compare(method: str, reference: str, text: str, verifier: MathVerifier) -> tuple[bool | None, str, str | None]:
    """Is ``text``'s answer the ``reference``? -> (equal or None if undecided, method used, extracted)."""
    extracted = extract_final(text)
    m = pick_method(method, reference, extracted)
    if m == "choice":
        got = choice_letter(extracted) or choice_letter(text)
        return (None if got is None else got == choice_letter(reference)), m, got
    if extracted is None:
        return None, m, None
    if m == "number":
        a, b = as_number(reference), as_number(extracted)
        if a is None or b is None:
            return False, m, extracted
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9), m, extracted
    if m == "exact":
        return normalize_text(reference) == normalize_text(extracted), m, extracted
    eq, _, _ = verifier.equal(reference, f"\\boxed{{{extracted}}}")
    return eq, m, extracted
