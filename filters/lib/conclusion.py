r"""What the end of a thinking trace concludes, and whether it agrees with a stated answer: the
machinery of ``think_answer_mismatch`` (``filters.think_answer_mismatch``), pure functions.

``statements`` lists the results the tail of the thinking states, each with its strength: firm (a
``\boxed{}`` not offered as an alternative, an answer phrase, an explicit choice), medium ("so /
therefore / 所以 ... X" near the end, not inside a re-check), or in passing (a bare "... = X", the
last sentence). ``judge_conclusion`` takes the firmest, latest one and compares it with the answer
(``agreement.agree``: choices as choices, statements as statements, prose as text, values as numbers); a
later value that agrees with the answer blocks a rejection. ``cut_short`` recognises thinking an
outside budget stopped mid-sentence.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .agreement import BOX_OPEN, agree, first_clause, wordy
from .extract import anchored, has_value, numbers
from .text import shorten

_CONCLUDE = re.compile(
    r"\b(?:so|therefore|thus|hence|that means|which means|that gives|this gives|in total|altogether|the result is|"
    r"total|daher|somit|also|insgesamt|donc|ainsi|au total|por lo tanto|entonces|"
    r"así que|en total|portanto|então|"
    r"quindi|поэтому|итак|значит|следовательно|всего|итого)\b|所以|因此|因而|综上|总共|一共|故|したがって|よって|"
    r"なので|だから|つまり|ゆえに|따라서|그러므로|즉|অতএব|সুতরাং|ดังนั้น|لذلك|إذن",
    re.IGNORECASE,
)
# sentences that test or suppose a value rather than conclude it
_ASIDE = re.compile(
    r"\b(?:check|verify|double[- ]check|confirm|if|suppose|assume|would|wenn|würde|si|проверю|проверим|проверка|"
    r"если|бы|prüfen|probe|vérifi\w*|comprob\w*)\b|验证|验算|检查|如果|假如|検算|確認|もし|검산|확인|만약|যাচাই|"
    r"ตรวจสอบ|تحقق",
    re.IGNORECASE,
)
# a box offered as one of several possibilities, not committed to
_HEDGE = re.compile(
    r"\b(?:alternatively|otherwise|if|or|unless|in case|whereas|instead of)\b"
    r"|否则|或者|如果|もし|または",
    re.IGNORECASE,
)
# "I'll go with 20", "let's settle on C": a choice made explicitly
_GO_WITH = re.compile(
    r"\b(?:i'?ll|i will|i'?m going to|i)\s+(?:have to\s+|just\s+|need to\s+)?"
    r"(?:go|stick|settle|choose|pick|select|commit|guess)(?:\s+(?:with|on|for|to))?\s+(.+)",
    re.IGNORECASE,
)
# a textual conclusion: "the answer is to keep ...", "答案是..."; it ends the search for a value
_TEXT_ANSWER = re.compile(
    r"\b(?:the |my )?(?:final |correct )?answer (?:is|should be|would be|will be|must be)\s+(.+)"
    r"|答案(?:是|为)(.+)|答えは(.+)",
    re.IGNORECASE,
)
# an answer phrase offered as a possibility: "Maybe the answer is 20", "the answer could be 3"
_MAYBE = re.compile(
    r"^\W*(?:\w+\W+){0,2}?(?:maybe|perhaps|possibly|alternatively|or|otherwise|unless)\b"
    r"|\b(?:might|could|may) be\b|\bif\b|也许|可能|或者|かもしれ",
    re.IGNORECASE,
)
# what an answer phrase's value follows: a copula or a colon ("the answer for the 30-minute case" states none)
_ANSWER_IS = re.compile(
    r"(?:\b(?:is|be|are|was|equals|lautet|ist|est|es|é|è|равен|будет|final answer)"
    r"|[:：=—-]|是|为|為|は|은|는)[\s*$]*$",
    re.IGNORECASE,
)
_CLAUSE_END = re.compile(
    r",?\s+(?:and|but|because|since|as|so|assuming)\s+(?=\w+\s+\w+)|[;；]|,\s*(?=perhaps|maybe)", re.IGNORECASE
)
# "So I need the number of ...", "so let me ...": a plan, not a result
_PLAN = re.compile(r"\W*(?:i|we)\s+(?:need|have|want|must|should|will|'ll|can)\b|\W*let(?:'s| me| us)\b", re.IGNORECASE)
_DELIMS = re.compile(r"\s*(?:\\\[|\\\]|\$\$|```\w*)\s*$")  # a line that only opens or closes a display
# a sentence that introduces the result on the next line: "Finally, subtract the sum from the total:"
_LEAD_IN = re.compile(r"(?:\b(?:finally|in the end|at last)\b|" + _CONCLUDE.pattern + r").*[:：]\s*$", re.IGNORECASE)
# what a firm statement needs (a cheap test before the full one): a box, an answer phrase, a choice
_FIRM_HINT = re.compile(
    r"\\(?:boxed|fbox)|answer|option|choice|go|stick|settle|choose|pick|select|commit|guess|答|解|"
    r"정답|답|antwort|lösung|réponse|respuesta|resposta|risposta|ответ|উত্তর|ตอบ|إجابة|جواب",
    re.IGNORECASE,
)
OPTION_LINE = re.compile(r"^[\W_]*\(?[A-J]\)?(?:[.)：:\s*]|$)")
_LIST = re.compile(r"\d+(?:\s*[,，、]\s*\d+){4,}")
_SENTENCES = re.compile(r"(?<=[。！？])|(?<=[.!?])\s+|\n+")
# a sentence whose last word is its value (units and a few words of text may follow)
_ENDS_IN_VALUE = re.compile(
    r"(?:\bis|\bare|\bequals|\bkeep|\bgives|\bget|\bguess|\bson|\bsind|\best|\bes"
    r"|是|为|は|=)\s*\$?-?\d[\d.,]*\$?[^\d.!?。]{0,16}[.!?。]?\s*$",
    re.IGNORECASE,
)
# "the one you picked", "one of them", "no one": "one" as a pronoun, not a value
_PRONOUN_ONE = re.compile(
    r"\b(?:(?:the|this|that|which|each|every|any|no|some|another|other|first|second|last|right|"
    r"wrong|correct|better|best)\s+one|one\s+(?:of|another|by one))\b",
    re.IGNORECASE,
)
_PRONOUN_I = re.compile(r"(?<![A-Za-z])I(?=['’]|\s+[a-z])")


def _has_value(span: str) -> bool:
    """``has_value`` without the pronoun "I" ("I'll go with that" states no option I)."""
    return has_value(_PRONOUN_ONE.sub(" ", _PRONOUN_I.sub(" ", span)))


def boxes(text: str) -> list[str]:
    """The contents of every closed ``\\boxed{}`` in ``text`` (a sentence: short), in order.

    >>> boxes(r"either \\boxed{1128} minutes or \\boxed{18.8} hours; \\boxed{x^{2}")
    ['1128', '18.8']
    """
    out = []
    for m in BOX_OPEN.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            out.append(text[m.end() : i - 1].strip())
    return out


class Statement(NamedTuple):
    index: int  # its sentence's position in the tail
    span: str  # the value it states
    strength: int  # 3: box / answer phrase / explicit choice; 2: "so / therefore ... X"; 1: a result stated in passing
    how: str  # which of them, for the verdict's detail
    textual: bool = False  # an answer phrase followed by words only: compared as text
    checking: bool = False  # inside a check ("Let me verify: ...")


# words a sentence cut mid-way ends on: articles, prepositions, conjunctions, auxiliaries
_DANGLING = re.compile(
    r"(?:\b(?:the|a|an|of|to|and|or|but|is|are|was|were|be|that|which|so|we|then|if|for|with|by|in|on|at|from|as|can|"
    r"would|will|should|could|must|this|these|there|its|their|our|my|i|let|than|into|because|since|when|while|where|"
    r"der|die|das|und|ist|le|la|les|et|est|de|el|los|y|es|и|в|на|что|это)|[,;:(\[{–—\-+*/=]|的|是|为|和|与|在|把|被|、|，|"
    r"の|は|が|を|に|で|と|も)\s*$",
    re.IGNORECASE,
)


def cut_short(thinking: str) -> str | None:
    """The last line of a thinking that stops mid-sentence (an external budget cut it, s1-style, and
    the answer follows), else None: a line ending on a dangling word or a comma, or a long prose
    line without any closing punctuation that states no answer.

    >>> cut_short("So the total is 12 apples and the remaining part would take")
    'So the total is 12 apples and the remaining part would take'
    >>> cut_short("3 + 4 = 7. So the answer is 7.") is None, cut_short("**Final Answer**\\n\\\\boxed{7}") is None
    (True, True)
    """
    lines = thinking.rstrip().rsplit("\n", 1)
    last = lines[-1].strip()
    if not last or re.search(r"[.!?。！？…)\]}>|`*\"'”’」』】$]\s*$", last):
        return None
    if _DANGLING.search(last):
        return last
    words = re.findall(r"[^\W\d_]+", last)
    if len(words) >= 8 and re.search(r"[^\W\d_]{2,}\s*$", last) and anchored(last) is None:
        return last
    return None


def statements(thinking: str, tail_chars: int = 2000, sentences: int = 8) -> list[Statement]:
    """The values the end of the thinking states, in order, each with how firmly (``Statement``):
    boxes (not one offered as an alternative: "Alternatively, if ..., \\boxed{x}"), answer phrases
    and explicit choices ("I'll go with 20") firmly; "so / therefore / 所以 ... X" less so, and not
    inside a check or a supposition; a result stated in passing ("... = X", "... is 12.") least.

    >>> [(x.span, x.strength) for x in statements("So x = 5. **Final Answer**\\n\\\\boxed{5}\\n\\nAlternatively, if "
    ...                                           "x is negative, \\\\boxed{-5}.")]
    [('x = 5.', 2), ('5', 3)]
    """
    tail = thinking[-tail_chars:]
    # in a paragraph that opens with a check ("Let's double check ...") only an explicit
    # conclusion ("So ...", "the answer is ...") counts
    parts = []  # (sentence, in a check)
    for para in re.split(r"\n\s*\n", tail):
        sents = [x for x in _SENTENCES.split(para) if x.strip() and not _DELIMS.match(x)]
        checking = bool(sents) and bool(_ASIDE.search(sents[0])) and not boxes(sents[0])
        parts += [(x, checking) for x in sents]
    found = []
    for i, (sentence, checking) in enumerate(parts):
        if i < len(parts) - sentences and not _FIRM_HINT.search(sentence):
            continue  # before the last few sentences only a box, an answer phrase or a choice counts
        st = _statement(sentence, checking, last=i == len(parts) - 1)
        if st is not None and st[1] == 1 and i and _LEAD_IN.search(parts[i - 1][0]) and not checking:
            st = (st[0], 2, "so ...: X")  # "Finally, subtract the sum from the total:" + "50 - 48 = 2"
        # a result on the way ("so ...", "= X") counts only near the end
        if st is not None and (st[1] == 3 or i >= len(parts) - sentences):
            found.append(Statement(i, *st, checking=checking) if len(st) == 4 else Statement(i, *st, False, checking))
    return found


def _statement(sentence: str, checking: bool, last: bool):
    sentence = sentence.strip()
    if sentence.endswith(("?", "？")):
        return None
    bx = boxes(sentence)
    if bx:
        if _HEDGE.search(BOX_OPEN.sub(" ", sentence)) or len({b.replace(" ", "") for b in bx}) > 1:
            return None  # an alternative offered, not the conclusion
        return bx[-1], 3, "box"
    if _ASIDE.search(sentence) or not _has_value(sentence):
        m = _TEXT_ANSWER.search(sentence)
        if m and not _MAYBE.search(sentence) and not _has_value(sentence):
            text = next(g for g in m.groups() if g is not None).strip(" *:：.。")
            if len(text) > 1:
                return text, 3, "answer phrase", True
        return None
    if _LIST.search(sentence):  # a list of values (divisors, cases), not a result
        return None
    span = anchored(sentence)
    if span is not None and _has_value(span) and not _MAYBE.search(sentence):
        at = sentence.rfind(span)
        if at < 0 or _ANSWER_IS.search(sentence[:at]):
            return span, 3, "answer phrase", wordy(span)
    m = _GO_WITH.search(sentence)
    if m and not checking:
        chosen = _CLAUSE_END.split(m.group(1), 1)[0].strip(" ,.:：。")  # "20, and perhaps ..." -> "20"
        if _has_value(chosen):
            return chosen, 3, "explicit choice", wordy(chosen)
    m = None
    for m in _CONCLUDE.finditer(sentence):  # noqa: B007 - the loop leaves m at the last match
        pass
    if m is not None and _has_value(sentence[m.end() :]) and not _PLAN.match(sentence[m.end() :]):
        rest = sentence[m.end() :].strip(" ,，:：")
        return (rest, 2, "so ...") if not wordy(rest) else None
    if checking:
        return None
    if _ENDS_IN_VALUE.search(sentence) or ("=" in sentence and _has_value(sentence.rsplit("=", 1)[1])):
        return sentence, 1, "a result in passing"
    if last and numbers(sentence):
        return sentence, 1, "last sentence"
    return None


def conclusion(thinking: str, tail_chars: int = 2000) -> str | None:
    """What the end of the thinking concludes: its last firm statement (a box, an answer phrase),
    else its last "so ..." statement, else a result stated in passing (``statements``).

    >>> conclusion("Check: 4(5) - 3 = 17. Correct. So x = 5.")
    'x = 5.'
    >>> conclusion("所以共有400只工蜂。")
    '共有400只工蜂。'
    >>> conclusion("Half of 48 is 24, so May = 24. Total = 72. That seems right.")
    '= 72.'
    """
    primary = _primary(statements(thinking, tail_chars))
    return primary.span if primary else None


def _primary(found: list[Statement]) -> Statement | None:
    for strength in (3, 2, 1):
        st = [x for x in found if x.strength == strength]
        if st:
            return st[-1]
    return None


def judge_conclusion(found: list[Statement], stated: str, prompt: str, verifier, choice: bool):
    """Whether the answer states what the thinking concluded -> (equal or None, the conclusion, how).

    The conclusion is the last firm statement (else the last "so ..." one). A mismatch needs
    more than the conclusion differing: no value the thinking states after it (a later result,
    a re-check) may agree with the answer either, and a conclusion only in passing (no box, no
    answer phrase, no "so") never rejects: the end of a long trace often re-checks a part or a
    sub-total after it reached its value.
    """
    primary = _primary(found)
    equal, how = agree(primary.span, stated, prompt, verifier, choice, primary.textual)
    if equal is not False:
        return equal, primary, how
    if primary.strength == 1:  # no explicit conclusion: only an agreement counts
        return None, primary, how + ", the thinking states no explicit conclusion"
    # what the thinking states after it, and (a conclusion inside a re-check) before it
    others = [
        x for x in found if x.index > primary.index or (primary.checking and x.strength >= 2 and x is not primary)
    ]
    for x in others:
        eq, _ = agree(first_clause(x.span), stated, prompt, verifier, choice, x.textual, strict=True)
        if eq:
            return None, primary, how + f"; but the thinking also states {shorten(x.span, 40)!r}"
    return False, primary, how
