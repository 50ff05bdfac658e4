r"""Answer forms beyond one stated value, for ``wrong_answer`` (``filters.lib.answers.compare``): a
quantity in two units (``1 m 72 cm`` for 1.72), a sentence that restates the question's givens
around its answer, a list or set stated inside commentary, an expression the task asked for, a
reference in numbered parts (``1. 左 2. 北東``) read from the matching parts of the answer, and a
Japanese ``-te iru`` statement against its negation. Each can only settle what the plain value
comparison could not; pure functions.
"""

from __future__ import annotations

import re
import unicodedata

from .extract import Number, numbers, plain, same_number, words

# ----------------------------------------------------------- compound quantities, restated givens

# a quantity in two units, the larger first: 1 m 72 cm, 18 hours and 48 minutes, 5 ft 3 in, 2 кг 300 г
_COMPOUND_UNITS = [
    (r"(?:h|hrs?|hours?|час(?:а|ов)?|ч|時間|小时|小時|시간)", r"(?:min|mins|minutes?|мин(?:ут[аы]?)?|分|분)", 60),
    (r"(?:min|mins|minutes?|мин(?:ут[аы]?)?|分|분)", r"(?:s|secs?|seconds?|сек(?:унд[аы]?)?|秒|초)", 60),
    (
        r"(?:m|meters?|metres?|м|метр(?:а|ов)?|米|メートル)",
        r"(?:cm|centimeters?|centimetres?|см|厘米|センチ(?:メートル)?)",
        100,
    ),
    (
        r"(?:km|kilometers?|kilometres?|км|公里|キロ(?:メートル)?)",
        r"(?:m|meters?|metres?|м|метр(?:а|ов)?|米|メートル)",
        1000,
    ),
    (r"(?:kg|kilograms?|кг|公斤|キロ(?:グラム)?)", r"(?:g|grams?|г|克|グラム)", 1000),
    (r"(?:ft|feet|foot)", r"(?:in|inch(?:es)?)", 12),
    (r"(?:lbs?|pounds?)", r"(?:oz|ounces?)", 16),
]
_COMPOUND = [
    (
        re.compile(
            r"(?<![\d.,])(\d+(?:[.,]\d+)?)\s*"
            + big
            + r"\.?(?:\s*(?:and|и|,))?\s*(\d+(?:[.,]\d+)?)\s*"
            + small
            + r"(?![A-Za-zА-Яа-я])",
            re.IGNORECASE,
        ),
        ratio,
    )
    for big, small, ratio in _COMPOUND_UNITS
]


def compound_equal(ref: Number, span: str) -> bool:
    """Whether ``span`` states ``ref`` as a quantity in two units (``1 m 72 cm`` for 1.72 or 172,
    ``18 hours and 48 minutes`` for 1128 or 18.8).

    >>> compound_equal(numbers("1.72")[0], "1 м 72 см"), compound_equal(numbers("1128")[0], "18 hours and 48 minutes")
    (True, True)
    >>> compound_equal(numbers("1.75")[0], "1 m 72 cm")
    False
    """
    s = plain(span)
    for rx, ratio in _COMPOUND:
        for m in rx.finditer(s):
            big, small = (float(g.replace(",", ".")) for g in m.groups())
            both = Number(m.group(0), (big + small / ratio, big * ratio + small))
            if same_number(both, ref):
                return True
    return False


def new_number_equal(ref: Number, span: str, prompt: str) -> bool:
    """An answer sentence that restates the question's givens ("3 loaves cost $4 more than 2
    bagels"): the one number in it that the prompt does not state is its answer."""
    if not prompt:
        return False
    given, stated = numbers(prompt), numbers(span)
    new = [n for n in stated if not any(same_number(n, g) for g in given)]
    return len(new) == 1 and len(stated) > 1 and same_number(new[0], ref)


# ----------------------------------------------------------- lists, expressions

_LIST = re.compile(r"\[([^\[\]]*)\]|\{([^{}]*)\}|\(([^()]*)\)")
_ITEM_SEP = re.compile(r"[,，、،;；]")


def _body(m: re.Match) -> str:
    return next(g for g in m.groups() if g is not None)


def _items(body: str) -> list[float] | None:
    out = []
    for item in _ITEM_SEP.split(body):
        ns = numbers(item)
        if not ns or not ns[0].values:  # no number, or one no notation reads (192.168.0.1)
            return None
        out.append(ns[0].values[0])
    return out


def list_equal(reference: str, text: str) -> bool:
    """A list reference (``[-4, 2, 5]``, ``\\{1, 2\\}``) stated by the answer's last list of as many
    numbers, wherever it stands (inside prose, after commentary, with full-width digits or other
    separators); a set (braces) in any order.

    >>> list_equal("[-4, 2, 5, 5]", "First [5, 2], no: the sorted list is [−４，２，５，５] as asked.")
    True
    >>> list_equal("[1, 2, 3]", "It is [1, 3, 2].")
    False
    >>> roots = "The roots (three of them) are $\\\\{3, 1, 2\\\\}$."
    >>> list_equal("\\\\{1, 2, 3\\\\}", roots), list_equal("[1, 2]", "[1 (twice), 2]")
    (True, True)
    """
    r = unicodedata.normalize("NFKC", reference.replace("\\{", "{").replace("\\}", "}")).strip()
    if not _LIST.fullmatch(r):
        return False
    want = _items(_body(_LIST.fullmatch(r)))
    if want is None or len(want) < 2:
        return False
    t = plain(text.replace("\\{", "{").replace("\\}", "}"))
    lists = [got for m in _LIST.finditer(t) if (got := _items(_body(m))) is not None and len(got) == len(want)]
    if not lists:
        return False
    got = lists[-1]
    if r.startswith("{"):
        got, want = sorted(got), sorted(want)
    return all(abs(a - b) <= 1e-9 * max(1, abs(a), abs(b)) for a, b in zip(got, want))


# an arithmetic expression of numbers (no unknowns): a task that asks to write the expression
_ARITHMETIC = re.compile(r"^[\d\s.()+\-*/×÷^]*\d[\d\s.()]*[+\-*/×÷^][\d\s.()+\-*/×÷^]*$")
# bounded: an opener never closed scans at most this far (linear in the text, not quadratic)
_MATH_SEGMENT = re.compile(
    r"\$\$(.{1,1000}?)\$\$|\\\[(.{1,1000}?)\\\]|\\\((.{1,1000}?)\\\)|\$([^$]{1,1000}?)\$", re.DOTALL
)


def states_expression(reference: str, text: str, verifier, limit: int = 6) -> bool:
    """Whether one of the answer's formulas that holds an operator is equivalent to the reference."""
    tried = 0
    for m in _MATH_SEGMENT.finditer(text[-4000:]):  # the formulas of the answer's end
        seg = next(g for g in m.groups() if g is not None).strip()
        if not re.search(r"[+\-*/×÷]|\\(?:times|div|frac|cdot)", seg) or "=" in seg:
            continue
        tried += 1
        if verifier.equal(reference, f"${seg}$")[0]:
            return True
        if tried >= limit:
            break
    return False


# ----------------------------------------------------------- numbered parts, closed classes, polarity

_PART_MARK = re.compile(r"(?:^|\s)(\d)(?:[.．](?!\d)|[)、])\s*")  # "1. 左", not the decimal in "1.5"
_CIRCLED = "①②③④⑤⑥⑦⑧⑨"


def ref_parts(reference: str) -> list[str] | None:
    """A reference that answers numbered questions in short parts: ``1. 左 2. 北東`` -> its parts.

    >>> ref_parts("1. 左 2. 北東"), ref_parts("1.72"), ref_parts("(1/3+33)*210/100")
    (['左', '北東'], None, None)
    """
    r = unicodedata.normalize("NFKC", reference).strip()
    ms = list(_PART_MARK.finditer(r))
    if len(ms) < 2 or ms[0].start() != 0 or [int(m.group(1)) for m in ms] != list(range(1, len(ms) + 1)):
        return None
    out = [r[a.end() : b.start() if b else len(r)].strip() for a, b in zip(ms, ms[1:] + [None])]
    return out if all(0 < len(p) <= 30 for p in out) else None


def _sections(text: str, n: int) -> list[str] | None:
    """The answer cut at the markers of its parts 1..n (a line opening with ``1.``, ``**質問1：``,
    ``Question 2``, ``②``), in order; None when a marker is missing."""
    pos, start = [], 0
    for k in range(1, n + 1):
        rx = re.compile(
            r"^[ \t#>*_\-]*(?:(?:質問|問題|問|設問|question|part|q)\s*)?(?:"
            + str(k)
            + r"(?![\d]|[.．]\d)|"
            + _CIRCLED[k - 1]
            + r")",
            re.MULTILINE | re.IGNORECASE,
        )
        m = rx.search(text, start)
        if m is None:
            return None
        pos.append(m.start())
        start = m.end()
    return [text[a:b] for a, b in zip(pos, pos[1:] + [len(text)])]


# closed classes of answers: naming another member of the class is naming another answer
_COMPASS = {
    "北": "N",
    "南": "S",
    "東": "E",
    "西": "W",
    "东": "E",
    "北東": "NE",
    "北西": "NW",
    "南東": "SE",
    "南西": "SW",
    "东北": "NE",
    "西北": "NW",
    "东南": "SE",
    "西南": "SW",
    "東北東": "ENE",
    "北北東": "NNE",
    "東南東": "ESE",
    "南南東": "SSE",
    "西南西": "WSW",
    "南南西": "SSW",
    "西北西": "WNW",
    "北北西": "NNW",
    "东北东": "ENE",
    # Japanese names a direction north/south first (北東); 東北 / 東南 in a Japanese answer is the
    # Chinese order (or a region): ambiguous, so a part naming it is undecided
    "東北": "?",
    "東南": "?",
}
_COMPASS_EN = re.compile(r"\b(north|south)[- ]?(east|west)\b|\b(north|south|east|west)\b", re.IGNORECASE)
# a direction on its own, not a character of a longer name (東京, 南京 are places)
_COMPASS_CJK = re.compile(
    "(?<![\u4e00-\u9fff])(?:" + "|".join(sorted(_COMPASS, key=len, reverse=True)) + ")(?![\u4e00-\u9fff])"
)
_SIDES = re.compile(r"左|右|\b(?:left|right)\b", re.IGNORECASE)


def _class_terms(s: str, ref: str) -> set[str] | None:
    """The members of the reference's closed class (compass points, left / right) that ``s``
    names, canonical; None when the reference is in no such class."""

    def compass(x: str) -> list[str]:
        out = []
        for m in _COMPASS_EN.finditer(x):
            out.append((m.group(1)[0] + m.group(2)[0]).upper() if m.group(1) else m.group(3)[0].upper())
        # the Japanese "東北" is the same in simplified Chinese, where "东北" is NE
        return out + [_COMPASS[t] for t in _COMPASS_CJK.findall(x)]

    def sides(x: str) -> list[str]:
        return [("L" if t.lower() in ("左", "left") else "R") for t in _SIDES.findall(x)]

    for read in (compass, sides):
        want = read(ref)
        if len(want) == 1 and _COMPASS_CJK.sub("", _COMPASS_EN.sub("", _SIDES.sub("", ref))).strip(" 。.") == "":
            return set(read(s))
    return None


def _sentences(section: str, prompt: str) -> list[str]:
    """The sentences of a section that state something: not questions, not the prompt restated."""
    out = []
    for sent in re.split(r"(?<=[。！!？?\n])", section):
        bare = re.sub(r"[*_#>`\s]|^\s*\d+[.)]", "", sent)
        if (
            not bare
            or bare.rstrip("。.").endswith(("?", "？"))
            or (len(bare) >= 4 and bare.rstrip("。.") in re.sub(r"\s", "", prompt))
        ):
            continue
        out.append(sent)
    return out


def part_equal(part: str, section: str, prompt: str) -> bool | None:
    """One short reference part against its section: a closed-class answer is read from the
    first sentence that names a member of the class; other text is True when stated, else None."""
    if _class_terms(part, part) is not None:
        want = _class_terms(part, part)
        for sent in _sentences(section, prompt):
            got = _class_terms(sent, part)
            if got:
                if any("?" in g for g in got):
                    return None
                return None if want <= got and len(got) > 1 else want == got
        return None
    return True if words(part) and " ".join(words(part)) in " ".join(words(section)) else None


def parts_equal(parts: list[str], text: str, prompt: str) -> bool | None:
    """Numbered reference parts against the answer's numbered sections: False when one part is
    answered otherwise, True when each is stated, else None."""
    sections = _sections(text, len(parts))
    if sections is None:
        return None
    verdicts = [part_equal(p, sec, prompt) for p, sec in zip(parts, sections)]
    if False in verdicts:
        return False
    return True if all(verdicts) else None


# Japanese -te iru predicates: the reference's polarity against the answer's final statement
_TE_IRU_NEG = ("ていない", "ていません", "てない", "ていなかった", "ていませんでした")
_TE_IRU_POS = ("ている", "ています", "ていた", "ていました", "てる")


def polarity_equal(reference: str, text: str) -> bool | None:
    """A reference that is a negated (or affirmed) Japanese ``-te iru`` predicate (``戻っていない``,
    "has not returned") against the last sentence of the answer that uses the same verb: the
    opposite polarity is False, the same True; else None.

    >>> polarity_equal("戻っていない（3歩前）", "計算すると…\\nスタート地点に戻っています！")
    False
    >>> said = "よって、スタート地点には戻っていません。"
    >>> polarity_equal("戻っていない", said), polarity_equal("戻っていない", "戻りません")
    (True, None)
    """
    head = re.split(r"[（(]", unicodedata.normalize("NFKC", reference).strip(), maxsplit=1)[0].strip()
    m = re.fullmatch(r"(\w{0,8}?[\u4e00-\u9fff][っんい]?)(て\w*)", head)
    if not m:
        return None
    stem, ending = m.group(1), m.group(2)
    want = False if ending in _TE_IRU_NEG else True if ending in _TE_IRU_POS else None
    if want is None:
        return None
    for sent in reversed(re.split(r"(?<=[。！!？?\n])", unicodedata.normalize("NFKC", text))):
        i = sent.find(stem + "て")
        if i < 0 or sent.rstrip().rstrip("*").endswith(("?", "？", "か")):
            continue
        rest = sent[i + len(stem) :]
        got = False if rest.startswith(_TE_IRU_NEG) else True if rest.startswith(_TE_IRU_POS) else None
        return None if got is None else got == want
    return None
