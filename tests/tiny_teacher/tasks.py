"""Synthetic problems with reference answers and worked solutions.

Every problem has a canonical ``key`` (operation and operands). Problems whose
key hashes into the held-out bucket are never used for training, so evaluation
and demo prompts are disjoint from training by construction, not by luck.

The worked solutions are shaped for a small transformer: operands are restated
zero-padded to equal width (column k is at a fixed offset) and each column step
carries the running result ("so far 703"), so the final answer is a local copy
rather than a long-range reversal.

>>> p = make_problem("add", (738, 965), "en")
>>> p.reference
'1703'
>>> p.thinking.splitlines()[-1]
'So the answer is 1703.'
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

KINDS = ("add", "sub", "mul", "cmp", "word")
#: Sampling weights of the kinds in training and in the prompt set.
KIND_WEIGHTS = (0.3, 0.28, 0.17, 0.08, 0.17)
HELD_OUT_BUCKETS = 10  # 1 bucket in 10 is held out


@dataclass(frozen=True)
class Problem:
    kind: str
    operands: tuple[int, ...]
    language: str  # "en" | "zh"
    prompt: str
    thinking: str  # worked solution, no tags, no surrounding newlines
    answer: str  # final answer text (contains \boxed{reference})
    reference: str

    @property
    def key(self) -> str:
        return problem_key(self.kind, self.operands)


def problem_key(kind: str, operands: tuple[int, ...]) -> str:
    return f"{kind}:{','.join(map(str, operands))}"


def is_held_out(kind: str, operands: tuple[int, ...]) -> bool:
    digest = hashlib.sha256(problem_key(kind, operands).encode()).digest()
    return digest[0] % HELD_OUT_BUCKETS == 0


# ---------------------------------------------------------------- operands


def _num(rng: random.Random, digits: int) -> int:
    return rng.randint(10 ** (digits - 1), 10**digits - 1)


_NAMES_EN = ("Tom", "Anna", "Li", "Sara", "Ben", "Mia")
_ITEMS_EN = ("apples", "books", "coins", "stamps", "cards", "pens")
_NAMES_ZH = ("小明", "小红", "小华", "小李", "小王", "小张")
_ITEMS_ZH = ("苹果", "书", "硬币", "邮票", "卡片", "笔")


def sample_operands(rng: random.Random, kind: str) -> tuple[int, ...]:
    if kind == "add":
        return (_num(rng, rng.randint(2, 3)), _num(rng, rng.randint(2, 3)))
    if kind == "sub":
        a, b = _num(rng, rng.randint(2, 3)), _num(rng, rng.randint(2, 3))
        return (max(a, b), min(a, b)) if a != b else (a + 1, b)
    if kind == "mul":
        return (_num(rng, rng.randint(2, 3)), rng.randint(2, 9))
    if kind == "cmp":
        a = _num(rng, rng.randint(2, 3))
        if rng.random() < 0.6:  # same length, differing late: the interesting case
            digits = list(str(a))
            i = rng.randrange(1, len(digits))
            digits[i] = str((int(digits[i]) + rng.randint(1, 9)) % 10)
            b = int("".join(digits))
        else:
            b = _num(rng, rng.randint(2, 3))
        return (a, b) if a != b else (a, b + 1)
    if kind == "word":
        start, more = rng.randint(10, 59), rng.randint(10, 39)
        give = rng.randint(10, start + more - 1)
        return (start, more, give, rng.randrange(len(_NAMES_EN)), rng.randrange(len(_ITEMS_EN)))
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


# ---------------------------------------------------------------- worked steps


def _column_steps(a: int, b: int, op: str, zh: bool) -> list[str]:
    """Column arithmetic as a state-passing scratchpad, one line per column.

    Each line opens with what is left of both numbers (``73+96:``), so the digits the
    step needs are the ones right before the operator and the colon: a local lookup.
    ``op`` is ``+`` or ``-`` (a >= b) or ``*`` (b a single digit).
    """
    if op == "*":
        sa, sb = str(a), str(b)
    else:
        width = max(len(str(a)), len(str(b)))
        sa, sb = str(a).zfill(width), str(b).zfill(width)
    lines, carry, so_far = [], 0, ""
    while sa:
        x = int(sa[-1])
        y = int(sb) if op == "*" else int(sb[-1])
        last = len(sa) == 1
        head = f"{sa}{op}{sb}:"
        if op == "-":
            d = x - y - carry
            if d < 0:
                work = (
                    f"{x}-{y}-{carry}<0，{x + 10}-{y}-{carry}={d + 10}，写{d + 10}借1"
                    if zh
                    else f"{x}-{y}-{carry}<0, {x + 10}-{y}-{carry}={d + 10}, write {d + 10} borrow 1"
                )
                d, carry = d + 10, 1
            else:
                work = f"{x}-{y}-{carry}={d}，写{d}借0" if zh else f"{x}-{y}-{carry}={d}, write {d} borrow 0"
                carry = 0
            digit = str(d)
        else:
            v = x * y + carry if op == "*" else x + y + carry
            expr = f"{x}*{y}+{carry}" if op == "*" else f"{x}+{y}+{carry}"
            digit = str(v) if last else str(v % 10)
            if zh:
                work = f"{expr}={v}，写{digit}" + ("" if last else f"进{v // 10}")
            else:
                work = f"{expr}={v}, write {digit}" + ("" if last else f" carry {v // 10}")
            carry = v // 10
        so_far = digit + so_far
        lines.append(f"{head} {work}" + (f"，目前 {so_far}。" if zh else f", so far {so_far}."))
        sa = sa[:-1]
        if op != "*":
            sb = sb[:-1]
    if op == "-" and so_far.lstrip("0") != so_far:
        value = so_far.lstrip("0") or "0"
        lines.append(f"去掉前导零，得 {value}。" if zh else f"Drop leading zeros: {value}.")
    return lines


def _cmp_steps(a: int, b: int, zh: bool) -> list[str]:
    sa, sb = str(a), str(b)
    big = max(a, b)
    if len(sa) != len(sb):
        return [
            f"{sa} 有 {len(sa)} 位，{sb} 有 {len(sb)} 位，位数多的更大。"
            if zh
            else f"{sa} has {len(sa)} digits and {sb} has {len(sb)} digits, more digits is larger."
        ]
    lines = [
        f"{sa} 和 {sb} 都是 {len(sa)} 位数，从左往右比较。"
        if zh
        else f"{sa} and {sb} both have {len(sa)} digits, compare from the left."
    ]
    for x, y in zip(sa, sb):
        if x == y:
            lines.append(f"{x}={y}，继续。" if zh else f"{x}={y}, go on.")
        else:
            rel = "<" if x < y else ">"
            lines.append(f"{x}{rel}{y}，所以 {big} 更大。" if zh else f"{x}{rel}{y}, so {big} is larger.")
            break
    return lines


def _word(ops: tuple[int, ...], zh: bool) -> tuple[str, list[str], int]:
    start, more, give, who, what = ops
    mid, end = start + more, start + more - give
    if zh:
        name, item = _NAMES_ZH[who], _ITEMS_ZH[what]
        prompt = f"{name}有 {start} 个{item}，又买了 {more} 个，然后送给朋友 {give} 个。{name}现在有多少个{item}？"
        steps = (
            [f"开始有 {start} 个，买了 {more} 个，先算 {start}+{more}。"]
            + _column_steps(start, more, "+", zh)
            + [f"送出 {give} 个，再算 {mid}-{give}。"]
            + _column_steps(mid, give, "-", zh)
        )
    else:
        name, item = _NAMES_EN[who], _ITEMS_EN[what]
        prompt = (
            f"{name} has {start} {item}. {name} buys {more} more, then gives {give} to a friend. "
            f"How many {item} does {name} have now?"
        )
        steps = (
            [f"Start with {start}, buy {more}: first {start}+{more}."]
            + _column_steps(start, more, "+", zh)
            + [f"Give {give}: then {mid}-{give}."]
            + _column_steps(mid, give, "-", zh)
        )
    return prompt, steps, end


def make_problem(kind: str, operands: tuple[int, ...], language: str) -> Problem:
    zh = language == "zh"
    if kind == "word":
        prompt, steps, value = _word(operands, zh)
    else:
        a, b = operands
        if kind == "add":
            value, steps = a + b, _column_steps(a, b, "+", zh)
            prompt = f"计算 {a}+{b} 等于多少？" if zh else f"What is {a}+{b}?"
        elif kind == "sub":
            value, steps = a - b, _column_steps(a, b, "-", zh)
            prompt = f"计算 {a}-{b} 等于多少？" if zh else f"What is {a}-{b}?"
        elif kind == "mul":
            value, steps = a * b, _column_steps(a, b, "*", zh)
            prompt = f"计算 {a}*{b} 等于多少？" if zh else f"What is {a}*{b}?"
        elif kind == "cmp":
            value, steps = max(a, b), _cmp_steps(a, b, zh)
            prompt = f"{a} 和 {b} 哪个更大？" if zh else f"Which is larger, {a} or {b}?"
        else:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    ref = str(value)
    steps.append(f"所以答案是 {ref}。" if zh else f"So the answer is {ref}.")
    answer = f"答案是 \\boxed{{{ref}}}。" if zh else f"The answer is \\boxed{{{ref}}}."
    return Problem(kind, tuple(operands), language, prompt, "\n".join(steps), answer, ref)


def sample_problem(rng: random.Random, held_out: bool, zh_share: float = 0.25) -> Problem:
    """Draw one problem from the training (held_out=False) or held-out split."""
    kind = rng.choices(KINDS, weights=KIND_WEIGHTS)[0]
    while True:
        ops = sample_operands(rng, kind)
        if is_held_out(kind, ops) == held_out:
            break
    return make_problem(kind, ops, "zh" if rng.random() < zh_share else "en")
