"""``think_answer_mismatch`` and ``guesswork``: is the answer what the thinking worked out?

``think_answer_mismatch``: the conclusion the end of the thinking reaches (``conclusion``: its
last ``\\boxed{}``, answer phrase, or "so / therefore / 所以 ... X" statement, read by the same
extractor as the final answer) must state the same *value* as the final answer: "400 worker
bees" and ``\\boxed{400}`` agree, "x = 5" and "x = 4" do not. The detail shows both and how they
were compared. It does not look at the reference: a final answer that matches the reference but
contradicts the thinking is still a mismatch (the student would learn to ignore its reasoning).

``guesswork``: thinking that ends in an explicit guess ("I'll guess", "我猜"), or thinking too
short for the answer it claims (fewer than ``min_thinking_words`` words while stating an answer).

>>> m = ThinkAnswerMismatchFilter(MathVerifier())
>>> m.check(Sample("<think>\\n3+4=7. So the answer is 7.\\n</think>\\n\\n\\\\boxed{7}", True)).passed
True
>>> m.check(Sample("<think>\\n3+4=7. So the answer is 7.\\n</think>\\n\\n\\\\boxed{8}", True)).detail
"thinking concludes '7'; the answer says '8' (number)"
>>> m.check(Sample("<think>\\nSo there are 400 worker bees.\\n</think>\\n\\n\\\\boxed{400}", True)).passed
True
>>> m.check(Sample("<think>\\n2x = 10, so x = 5.\\n</think>\\n\\nThe answer is x = 4.", True)).reason
'think_answer_mismatch'
>>> g = GuessworkFilter()
>>> g.check(Sample("<think>\\nNo idea how to do this, I'll just guess.\\n</think>\\n\\n\\\\boxed{3}", True)).reason
'explicit_guess'
>>> g.check(Sample("<think>\\nEasy.\\n</think>\\n\\n\\\\boxed{3}", True)).reason
'thinking_too_short'
"""

from __future__ import annotations

import re

from pydantic import Field

from .answers import AnswerMethod, MathVerifier, choice_of, kind, states_text
from .base import Filter, FilterConfig, Sample, Shared, Verdict, register
from .extract import anchored, final_span, has_value, main_number, numbers, options, plain, same_number
from .text import last_boxed, shorten

_GUESS = re.compile(
    r"\b(?:i'?ll|i will|let me|i'?m going to|i have to|i must|i'?d)\s+(?:just\s+|simply\s+)?guess\b"
    r"|\bmy (?:best )?guess\b|\bjust guess(?:ing)?\b|\b(?:random(?:ly)?|blind(?:ly)?) (?:pick|choose|guess)"
    r"|\b(?:au hasard|al azar|a caso|наугад|угадаю|raten|tippe ich)\b"
    r"|我猜|猜一个|蒙一个|随便选|随便猜|瞎猜|適当に|当てずっぽう|勘で|추측|찍(?:어|겠|을)|대충 고르",
    re.IGNORECASE)
_WORD = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]|[^\W\d_\u3040-\u30ff\u3400-\u9fff]+|\d+")  # CJK: one per character


@register
class ThinkAnswerMismatchFilter(Filter):
    name = "think_answer_mismatch"

    class Config(FilterConfig):
        method: AnswerMethod = "auto"
        """How the two values are compared; ``auto``: letters for a multiple-choice prompt, numbers
        when both state one, math-verify for two LaTeX expressions, else undecided."""
        keep_undecided: bool = True
        """Keep a sample whose conclusion and answer cannot be compared mechanically (two texts)."""
        tail_chars: int = Field(default=2000, ge=200)
        """How much of the end of the thinking its conclusion is looked for in."""

    @classmethod
    def build(cls, settings: Config, shared: Shared) -> "ThinkAnswerMismatchFilter":
        return cls(shared.verifier, settings)

    def __init__(self, verifier: MathVerifier | None = None, settings: Config | None = None):
        self.verifier, self.s = verifier, settings or self.Config()

    def check(self, s: Sample) -> Verdict:
        if not s.thinking_expected or not s.thinking.strip():
            return self.skip("skipped_no_thinking")
        if not s.answer.strip() or s.finish_reason in ("length", "repetition"):
            return self.skip("skipped_no_final_answer", "nothing after the think block, or it was cut off")
        if s.budget_hit:  # the budget ended the thinking mid-way: it concludes nothing to compare
            return self.skip("skipped_budget_cut", "the thinking budget cut the thinking before it concluded")
        concluded = conclusion(s.thinking, self.s.tail_chars)
        if concluded is None:
            return self.skip("skipped_no_conclusion", "the thinking's end states no value (no \\boxed{}, no "
                                                      "'answer is', no 'so ... = X')")
        stated = final_span(s.answer, stated=True)
        if stated is None:
            return self.skip("skipped_no_final_answer", "the answer states no final answer (no box, no answer phrase)")
        choice = self.s.method == "choice" or (self.s.method == "auto" and (
            (s.reference is not None and kind(s.reference) == "choice") or len(options(s.prompt)) >= 2))
        equal, how = agree(concluded, stated, s.prompt, self.verifier, choice)
        detail = f"thinking concludes {shorten(concluded, 60)!r}; the answer says {shorten(stated, 60)!r} ({how})"
        if equal is None:
            return self.skip("skipped_undecided", detail) if self.s.keep_undecided else \
                self.reject("skipped_undecided", None, detail)
        return self.ok(1.0, detail) if equal else self.reject("think_answer_mismatch", 0.0, detail)


_CONCLUDE = re.compile(
    r"\b(?:so|therefore|thus|hence|that means|which means|that gives|this gives|in total|altogether|the result is|"
    r"total|daher|somit|also|insgesamt|donc|ainsi|au total|por lo tanto|entonces|así que|en total|portanto|então|"
    r"quindi|поэтому|итак|значит|следовательно|всего|итого)\b|所以|因此|因而|综上|总共|一共|故|したがって|よって|"
    r"なので|だから|つまり|ゆえに|따라서|그러므로|즉|অতএব|সুতরাং|ดังนั้น|لذلك|إذن",
    re.IGNORECASE)
# sentences that test or suppose a value rather than conclude it
_ASIDE = re.compile(
    r"\b(?:check|verify|double[- ]check|confirm|if|suppose|assume|would|wenn|würde|si|проверю|проверим|проверка|"
    r"если|бы|prüfen|probe|vérifi\w*|comprob\w*)\b|验证|验算|检查|如果|假如|検算|確認|もし|검산|확인|만약|যাচাই|"
    r"ตรวจสอบ|تحقق",
    re.IGNORECASE)
_LIST = re.compile(r"\d+(?:\s*[,，、]\s*\d+){4,}")
_SENTENCES = re.compile(r"(?<=[。！？])|(?<=[.!?])\s+|\n+")
# a sentence whose last word is its value (units and a few words of text may follow)
_ENDS_IN_VALUE = re.compile(r"(?:\bis|\bare|\bequals|\bkeep|\bgives|\bget|\bguess|\bson|\bsind|\best|\bes|是|为|は|=)\s*\$?-?\d[\d.,]*\$?"
                            r"[^\d.!?。]{0,16}[.!?。]?\s*$", re.IGNORECASE)


def conclusion(thinking: str, tail_chars: int = 2000, sentences: int = 8) -> str | None:
    """What the end of the thinking concludes: its last ``\\boxed{}`` if its tail has one, else
    the latest of its last ``sentences`` sentences that states a result (an answer phrase, "so /
    therefore / 所以 ...", or "... = X") and is not a check or a supposition.

    >>> conclusion("Check: 4(5) - 3 = 17. Correct. So x = 5.")
    'So x = 5.'
    >>> conclusion("所以共有400只工蜂。")
    '共有400只工蜂。'
    >>> conclusion("Half of 48 is 24, so May = 24. Total = 72. That seems right.")
    'Total = 72.'
    """
    tail = thinking[-tail_chars:]
    box = last_boxed(tail)
    if box is not None:
        return box.strip()
    # in a paragraph that opens with a check ("Let's double check ...") only an explicit
    # conclusion ("So ...", "the answer is ...") counts
    parts = []
    for para in re.split(r"\n\s*\n", tail):
        sents = [x for x in _SENTENCES.split(para) if x.strip()]
        checking = bool(sents) and bool(_ASIDE.search(sents[0]))
        parts += [(x, checking) for x in sents]
    for sentence, checking in reversed(parts[-sentences:]):
        if _ASIDE.search(sentence) or not has_value(sentence) or sentence.rstrip().endswith(("?", "？")):
            continue
        if checking and not (_CONCLUDE.search(sentence) or anchored(sentence)):
            continue
        if _LIST.search(sentence):  # a list of values (divisors, cases), not a result
            continue
        span = anchored(sentence)
        if span is not None and has_value(span):
            return span
        if _ENDS_IN_VALUE.search(sentence):  # "The number of ways is 242.", "Son 9.", "I'll keep 37.25."
            return sentence.strip()
        m = None
        for m in _CONCLUDE.finditer(sentence):
            pass
        if m is not None and has_value(sentence[m.end():]):
            return sentence[m.end():].strip(" ,，:：")
        if "=" in sentence and has_value(sentence.rsplit("=", 1)[1]):
            return sentence.strip()
    # the very last sentence, if it states a value and is not a check ("Both routes agree: one million.")
    last = next((x for x, checking in reversed(parts) if x.strip()), None)
    if last is not None and not _ASIDE.search(last) and numbers(last) and not last.rstrip().endswith(("?", "？")):
        return last.strip()
    return None


def agree(concluded: str, stated: str, prompt: str, verifier, choice: bool) -> tuple[bool | None, str]:
    """Whether two stated values are the same value -> (equal or None if undecided, how)."""
    if choice:
        a, b = choice_of(concluded, concluded, prompt), choice_of(stated, stated, prompt)
        return (None if a is None or b is None else a == b), "choice"
    na, nb = main_number(concluded), main_number(stated)
    if na is not None and nb is not None:
        if same_number(na, nb):
            return True, "number"
        # a conclusion or an answer that states a few results ("the minimum is 3, at x = 2",
        # "5 tickets cost 34,00 $"): a value they share is agreement
        return any(same_number(x, y) for x in results(concluded) for y in results(stated)), "number"
    if states_text(stated, concluded) or states_text(concluded, stated):
        return True, "exact"
    if verifier is not None and "\\" in concluded and "\\" in stated:
        eq, _, _ = verifier.equal(concluded, f"\\boxed{{{stated}}}")
        return eq, "math"
    return None, "undecided"


_RESULT = re.compile(r"(?:=|≡|\\equiv|→|⇒|\\Rightarrow|\\implies|\bis|\bare|\bequals|\bgives|\bmakes|是|为|為|は|равно|\bist|\best|\bes|\bson|:|：)\s*\$?\s*"
                     r"(-?\d[\d.,]*(?:\s*/\s*\d+)?|\\[dt]?frac\{[^{}]*\}\{[^{}]*\})", re.IGNORECASE)


def results(sentence: str) -> list:
    """The values a sentence states as results: after ``=``, "is", "是", "は", ... (not the
    operands on the way), else its main number.

    >>> [n.values[0] for n in results("Divide by 4: x = 5.")], [n.values[0] for n in results("最小值是3，在 x = 2 处取得")]
    ([5.0, 5.0], [3.0, 2.0, 2.0])
    """
    text = plain(sentence)
    found = [n for m in _RESULT.finditer(text) for n in numbers(m.group(1))[:1]]
    every = numbers(text)
    if not found:  # no "=" or "is": every number it states ("1人12個です", "10번째 수는 1024")
        return every
    return found + every[-1:]  # and its last ("... ≡ 3")


@register
class GuessworkFilter(Filter):
    name = "guesswork"

    class Config(FilterConfig):
        min_thinking_words: int = Field(default=5, ge=0)
        """Thinking shorter than this (words; a CJK character counts as one) that still states an
        answer is ``thinking_too_short``. 0 = off."""

    @classmethod
    def build(cls, settings: Config, shared: Shared) -> "GuessworkFilter":
        return cls(settings.min_thinking_words)

    def __init__(self, min_thinking_words: int = 5, tail_chars: int = 400):
        self.min_words, self.tail_chars = min_thinking_words, tail_chars

    def check(self, s: Sample) -> Verdict:
        if not s.thinking_expected:
            return self.skip("skipped_no_thinking")
        m = _GUESS.search(s.thinking[-self.tail_chars:])
        if m:
            return self.reject("explicit_guess", detail=f"the thinking ends in a guess: {m.group(0)!r}")
        words = len(_WORD.findall(s.thinking))
        if words < self.min_words and not s.budget_hit and final_span(s.answer) is not None:
            return self.reject("thinking_too_short", float(words),
                               f"{words} words of thinking for an answer of {len(s.answer)} chars "
                               f"(at least {self.min_words} expected)")
        return self.ok(float(words))
