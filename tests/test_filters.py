"""Rejection filters, table-driven: for each reason, samples that must pass and samples that must
be rejected, in English and Chinese. Every case asserts the reason, not just the boolean."""

from __future__ import annotations

import json
import time

import pytest

from filters import FiltersConfig, Judge, Sample
from filters.contamination import ContaminationFilter
from filters.format import FormatFilter
from filters.guesswork import GuessworkFilter
from filters.language_mixing import LanguageMixingFilter
from filters.lib.answers import MathVerifier
from filters.repetition import RepetitionFilter
from filters.think_answer_mismatch import ThinkAnswerMismatchFilter
from filters.wrong_answer import WrongAnswerFilter
from pipeline.dialects import EARLY_STOP


def think(thinking: str, answer: str, **kw) -> Sample:
    kw.setdefault("early_stop", EARLY_STOP)  # what the pipeline tells the filters of its dialect
    return Sample(f"<think>\n{thinking}\n</think>\n\n{answer}", True, **kw)


def no_think(answer: str, **kw) -> Sample:
    kw.setdefault("early_stop", EARLY_STOP)
    return Sample(f"<think>\n\n</think>\n\n{answer}", False, **kw)


@pytest.fixture(scope="module")
def verifier():
    v = MathVerifier(timeout_s=3)
    yield v
    v.close()


# ------------------------------------------------------------------------ format


@pytest.mark.parametrize(
    "sample, reason",
    [
        (think("2+2=4", "\\boxed{4}"), None),
        (no_think("\\boxed{4}"), None),
        (think("2+2=4", "答案是 \\boxed{4}。"), None),
        (Sample("<think>\n2+2=", True, finish_reason="length"), "truncated"),
        (think("2+2=4", "The answer is 4 and then", finish_reason="length"), "truncated"),
        (Sample("<think>\n2+2=4 and so on", True, finish_reason="stop"), "unclosed_think"),
        (Sample("The answer is 4.", True), "missing_think_block"),
        (Sample("<think>\na\n</think>\n\n<think>\nb\n</think>\n\n4", True), "multiple_think_blocks"),
        (think("2+2=4", "4 </think> oops"), "think_tag_in_answer"),
        (think("2+2=4", f"The answer is \\\n\n{EARLY_STOP}\n</think>\n\n\\boxed{{5}}"), "budget_forced_in_answer"),
        (think("", "\\boxed{4}"), "empty_thinking"),
        (no_think("\\boxed{4}").__class__("<think>\n我想一下\n</think>\n\n4", False), "thinking_in_no_think"),
        (think("2+2=4", "  "), "empty_answer"),
    ],
)
def test_format(sample, reason):
    v = FormatFilter().check(sample)
    assert (v.passed, v.reason) == (reason is None, reason), v.detail


# ------------------------------------------------------------------ wrong_answer


@pytest.mark.parametrize(
    "answer, reference, source, reason, method",
    [
        ("\\boxed{0.5}", "\\frac{1}{2}", None, None, "number"),
        ("\\boxed{\\frac{1}{2}}", "1/2", None, None, "number"),
        ("The answer is 1/2.", "0.5", None, None, "number"),
        ("\\boxed{x^2+2x+1}", "(x+1)^2", None, None, "math"),
        ("\\boxed{\\frac{1}{3}}", "0.5", None, "wrong_answer", "number"),
        ("所以答案是 \\boxed{140}。", "140", None, None, "number"),
        ("\\boxed{1,234}", "1234", None, None, "number"),
        ("\\boxed{139}", "140", None, "wrong_answer", "number"),
        ("I choose (b).", "B", None, None, "choice"),
        ("\\boxed{C}", "(B)", None, "wrong_answer", "choice"),
        ("\\boxed{\\text{Paris}}", "paris", "geo", None, "exact"),
        ("\\boxed{Lyon}", "Paris", "geo", "wrong_answer", "exact"),
        ("I am not sure.", "4", None, "no_answer", None),
    ],
)
def test_wrong_answer(verifier, answer, reference, source, reason, method):
    f = WrongAnswerFilter(verifier, by_source={"geo": "exact"})
    v = f.check(think("work", answer, reference=reference, source=source))
    assert (v.passed, v.reason) == (reason is None, reason), v.detail
    if method:
        assert f"({method})" in v.detail


def test_wrong_answer_without_reference_is_skipped(verifier):
    v = WrongAnswerFilter(verifier).check(think("work", "\\boxed{4}"))
    assert (v.passed, v.reason) == (None, "skipped_no_reference")


def test_a_hanging_comparison_is_bounded_not_waited_on(verifier):
    """sympy would take minutes on this; the child is killed at the bound and the next call works."""
    f = WrongAnswerFilter(verifier, method="math")
    started = time.monotonic()
    v = f.check(think("work", "\\boxed{\\sum_{n=1}^{10^{9}} n^{n}}", reference="3"))
    assert time.monotonic() - started < 3 + 8  # the bound, plus a cold start of the child
    assert (v.passed, v.reason) == (None, "skipped_undecided")
    assert f.check(think("work", "\\boxed{0.5}", reference="\\frac{1}{2}")).passed is True


# -------------------------------------------------------------------- repetition


def _cases(n: int) -> str:
    return "\n".join(
        f"Case n = {i}: {i}^2 = {i * i}, and {i * i} mod 7 = {i * i % 7}, so n = {i} "
        f"{'works' if i * i % 7 == 1 else 'fails'}."
        for i in range(1, n + 1)
    )


LONG_LEGIT = "\n\n".join(
    f"Step {k}: we take the partial sum S_{k} = {k * (k + 1) // 2} and add {k + 1} to get {(k + 1) * (k + 2) // 2}. "
    f"Checking the parity, {(k + 1) * (k + 2) // 2} is {'even' if (k + 1) * (k + 2) // 2 % 2 == 0 else 'odd'}."
    for k in range(1200)
)  # ~150k chars, tens of thousands of tokens


@pytest.mark.parametrize(
    "thinking, answer, reason",
    [
        (_cases(12), "\\boxed{6}", None),  # twelve cases, one template: legitimate
        ("\n".join(f"| {i} | {i * i} | {i**3} |" for i in range(1, 60)), "\\boxed{8}", None),  # a table of values
        (LONG_LEGIT, "\\boxed{1}", None),  # a long trace of structured steps
        (
            "我们逐位相加。" + "".join(f"第{i}位：{i}+{i}={2 * i}，写下{2 * i % 10}。" for i in range(1, 10)),
            "\\boxed{2}",
            None,
        ),
        ("Let me check this again carefully. " * 8, "\\boxed{4}", "repeated_sentence"),
        ("让我们再仔细检查一遍这个结果是否正确吧。" * 8, "\\boxed{4}", "repeated_sentence"),
        (("We compute the digit sum and compare it with nine to decide.\n\n") * 4, "\\boxed{4}", "repeated_paragraph"),
        ("so we add the carry and get the next digit then we add the carry and " * 40, "\\boxed{4}", "repeated_ngram"),
        ("计算过程中我们不断地重复同一个步骤然后继续重复同一个步骤而不停止" * 30, "\\boxed{4}", "repeated_ngram"),
        (LONG_LEGIT[:60000] + " " + "9 " * 1500, "\\boxed{4}", "low_compression_tail"),  # a short loop at the end
        (
            "short",
            "The answer is 4. The answer is 4. The answer is 4. The answer is 4. The answer is 4. The answer is 4.",
            None,
        ),  # sentences under 20 chars are not counted
        ("work", "I think it is four, yes it is four. " * 6, "repeated_sentence"),
    ],
)
def test_repetition(thinking, answer, reason):
    v = RepetitionFilter().check(think(thinking, answer))
    assert (v.passed, v.reason) == (reason is None, reason), v.detail
    if reason:
        assert v.detail.split(":")[0] in ("thinking", "answer")


# --------------------------------------------------------------- language_mixing

ZH = "请计算 37 乘以 12 的结果。"


@pytest.mark.parametrize(
    "prompt, thinking, answer, reason",
    [
        (ZH, "先算 37×10=370，再算 37×2=74，相加得 444。", "答案是 \\boxed{444}。", None),
        (
            ZH,
            "我们可以用 GPU 或 Python 来验证：\n```python\nprint(37 * 12)  # prints the product of both numbers\n```\n"
            "结果是 444。",
            "答案是 \\boxed{444}。",
            None,
        ),  # code, short technical terms inside Chinese
        (ZH, "利用分配律 $37 \\times 12 = 37 \\times (10 + 2)$，得到 $\\frac{888}{2} = 444$。", "\\boxed{444}", None),
        (
            ZH,
            "先算 37×10=370。Then I need to add thirty seven times two to this partial result. So we get 444.",
            "答案是 \\boxed{444}。",
            "language_mixing",
        ),  # Chinese reasoning switching to English sentences
        (
            ZH,
            "先算 37×10=370，再算 37×2=74。",
            "The final answer is the sum of both partial products, 444.",
            "language_mixing",
        ),
        (
            "What is 37 times 12?",
            "First 37*10=370, then 37*2=74, so 444. The word 乘 means times.",
            "\\boxed{444}",
            None,
        ),
        (
            "What is 37 times 12?",
            "First 37*10=370. 然后我们再计算三十七乘以二的结果。 So 444.",
            "\\boxed{444}",
            "language_mixing",
        ),
        (
            "What is 37 times 12? See https://example.com/x_y?q=1 for context.",
            "Use the identifier total_sum and camelCase variable fooBar; it is 444.",
            "\\boxed{444}",
            None,
        ),
        (
            "Translate into English: 我喜欢数学。",
            "这句话的意思是我喜欢数学。",
            "I like mathematics.",
            "skipped_translation",
        ),
        (
            "请把这句话翻译成英文：我喜欢数学。",
            "直译即可。",
            "I like mathematics very much indeed.",
            "skipped_translation",
        ),
        (ZH, f"先算 37×10=370，再算\n\n{EARLY_STOP}", "答案是 \\boxed{444}。", None),  # the forced budget text
    ],
)
def test_language_mixing(prompt, thinking, answer, reason):
    v = LanguageMixingFilter().check(think(thinking, answer, prompt=prompt))
    passed = None if reason and reason.startswith("skipped") else reason is None
    assert (v.passed, v.reason) == (passed, reason), v.detail


def test_language_mixing_detail_names_the_script_and_share():
    v = LanguageMixingFilter().check(
        think("先算个位。Now I will add the tens digits and carry the one over.", "答案是 7。", prompt="计算 3 加 4")
    )
    assert "in en where zh is expected" in v.detail and v.score > 0.05


# ---------------------------------------------------------- think_answer_mismatch


@pytest.mark.parametrize(
    "thinking, answer, reference, reason",
    [
        ("3+4=7. So the answer is 7.", "\\boxed{7}", "7", None),
        ("3+4=7, so \\boxed{7}.", "The answer is $\\frac{14}{2}$.", "7", None),
        (
            "所以答案是 993。",
            "答案是 \\boxed{973}。",
            "973",
            "think_answer_mismatch",
        ),  # right answer, contradicts thinking
        ("So the answer is 12.", "\\boxed{13}", None, "think_answer_mismatch"),
        ("I computed several partial sums.", "\\boxed{13}", None, "skipped_no_conclusion"),
        ("So the answer is 12.", "Twelve, probably.", None, "skipped_no_final_answer"),
    ],
)
def test_think_answer_mismatch(verifier, thinking, answer, reference, reason):
    v = ThinkAnswerMismatchFilter(verifier).check(think(thinking, answer, reference=reference))
    passed = None if reason and reason.startswith("skipped") else reason is None
    assert (v.passed, v.reason) == (passed, reason), v.detail
    if reason == "think_answer_mismatch":
        assert "thinking concludes" in v.detail and "the answer says" in v.detail


def test_mismatch_skips_no_think(verifier):
    v = ThinkAnswerMismatchFilter(verifier).check(no_think("\\boxed{3}"))
    assert (v.passed, v.reason) == (None, "skipped_no_thinking")


# ---------------------------------------------------------------------- guesswork


@pytest.mark.parametrize(
    "thinking, answer, reason",
    [
        ("48/6 = 8, and 8 is even, so the answer is 8.", "\\boxed{8}", None),
        ("I cannot work this out, so I'll just guess.", "\\boxed{3}", "explicit_guess"),
        ("This is too hard. My best guess is C.", "\\boxed{C}", "explicit_guess"),
        ("不会做，我猜是 C。", "\\boxed{C}", "explicit_guess"),
        ("Obvious.", "\\boxed{3}", "thinking_too_short"),
        ("显然。", "\\boxed{3}", "thinking_too_short"),
        ("We should not guess here; compute 6*7 = 42 exactly.", "\\boxed{42}", None),
    ],
)
def test_guesswork(thinking, answer, reason):
    v = GuessworkFilter().check(think(thinking, answer))
    assert (v.passed, v.reason) == (reason is None, reason), v.detail


def test_short_thinking_after_a_budget_cut_is_not_guesswork():
    assert GuessworkFilter().check(think("Obvious.", "\\boxed{3}", budget_hit=True)).passed is True


# ------------------------------------------------------------------ contamination


def test_contamination_from_files(tmp_path):
    (tmp_path / "eval.jsonl").write_text(
        json.dumps(
            {
                "question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many "
                "clips in May."
            }
        )
        + "\n"
        + json.dumps({"question": "2+2?"})
        + "\n"
    )
    (tmp_path / "eval.txt").write_text("小明有五个苹果，他给了小红两个苹果，然后又买了三个苹果，现在他有几个苹果？\n")
    f = ContaminationFilter([str(tmp_path / "eval.jsonl"), str(tmp_path / "eval.txt")], field="question", n=13)
    cases = [
        (
            "natalia SOLD clips to 48 of her friends in April and then she sold half as many clips in May. "
            "How many in total?",
            "eval_overlap",
        ),
        ("Natalia sold pens to her friends.", None),
        ("2 + 2?", "eval_overlap"),  # a short item must match whole
        ("小明有五个苹果，他给了小红两个苹果，然后又买了三个苹果，现在他有几个？", "eval_overlap"),
        ("小明有五个梨。", None),
    ]
    for prompt, reason in cases:
        v = f.check(think("x", "y", prompt=prompt))
        assert (v.passed, v.reason) == (reason is None, reason), (prompt, v.detail)
    assert "eval.jsonl" in f.check(think("x", "y", prompt=cases[0][0])).detail


# ------------------------------------------------------------------------- judge


def test_judge_runs_every_filter_and_rejects_with_the_first_failure():
    judge = Judge(FiltersConfig())
    verdicts, reason = judge(think("So the answer is 12. I'll just guess.", "\\boxed{13}", reference="13"))
    assert [v.filter for v in verdicts] == FiltersConfig().order
    assert reason == "think_answer_mismatch"  # wrong_answer passed; mismatch comes before guesswork
    assert {v.filter: v.reason for v in verdicts}["guesswork"] == "explicit_guess"
    # a skip rejects only where keep_skipped is off
    verdicts, reason = judge(think("3+4=7, so the answer is 7.", "\\boxed{7}"))
    assert reason is None and {v.filter: v.reason for v in verdicts}["wrong_answer"] == "skipped_no_reference"
    strict = Judge(FiltersConfig(wrong_answer={"keep_skipped": False}))
    assert strict(think("3+4=7, so the answer is 7.", "\\boxed{7}"))[1] == "skipped_no_reference"


def test_a_filter_that_raises_becomes_a_verdict_not_a_crash():
    judge = Judge(FiltersConfig(order=["format"]))

    class Boom:
        name = "format"

        def check(self, sample):
            raise RuntimeError("boom")

    judge.filters = [Boom()]
    verdicts, reason = judge(think("a", "b"))
    assert verdicts[0].reason == "filter_error" and "boom" in verdicts[0].detail and reason == "filter_error"
    keep = Judge(FiltersConfig(order=["format"], on_error="keep"))
    keep.filters = [Boom()]
    assert keep(think("a", "b"))[1] is None  # on_error: keep


# ============================================================ wrong_answer: answer forms (issue 30)


@pytest.mark.parametrize(
    "answer, reference, prompt, reason",
    [
        ("\\boxed{\\text{B}}", "(b) 42", "Pick one: (a) 40 (b) 42 (c) 44", None),  # letter of a letter+value reference
        ("So the total is \\boxed{42}.", "(b) 42", "Pick one: (a) 40 (b) 42 (c) 44", None),  # its value
        ("The answer is (c).", "(b) 42", "Pick one: (a) 40 (b) 42 (c) 44", "wrong_answer"),
        ("Answer: 2 m 5 cm", "2.05", "", None),  # a quantity in two units
        ("\\boxed{3 \\text{ h } 10 \\text{ min}}", "190", "", None),
        ("Answer: 2 m 7 cm", "2.05", "", "wrong_answer"),
        (
            "**Answer:** 5 pens cost $7 more than 2 pencils.",
            "7",
            "5 pens at $2, 2 pencils at $1.5",
            None,
        ),  # givens restated
        ("So the answer is seven.", "7", "", None),  # a number in words
        ("Ann is the fastest, at 4.5 units per hour.", "\\text{Ann}", "", None),  # a text reference in a sentence
        ("So $x = \\dfrac12$.", "0.5", "", None),
        ("Sorted: first [3, 1]... no. The result is [1, 2, 3] as asked.", "[1, 2, 3]", "", None),  # a list in prose
        ("The result is [1, 3, 2].", "[1, 2, 3]", "", "wrong_answer"),
        (
            "1. 左に曲がります。\n2. 北西です。",
            "1. 左 2. 北東",
            "1. どちら? 2. 方角は?",
            "wrong_answer",
        ),  # numbered parts
        ("1. Turn right.\n2. North-east.", "1. left 2. northeast", "", "wrong_answer"),
        ("1. Turn left.\n2. North-east.", "1. left 2. northeast", "", None),
        ("よって、元の場所には戻っています。", "戻っていない", "", "wrong_answer"),  # a negated predicate affirmed
    ],
)
def test_wrong_answer_forms(verifier, answer, reference, prompt, reason):
    v = WrongAnswerFilter(verifier).check(think("work", answer, reference=reference, prompt=prompt))
    assert (v.passed, v.reason) == (reason is None, reason), v.detail


def test_wrong_answer_expression_reference_with_a_slip_evaluating_it_is_undecided(verifier):
    s = think("work", "The expression is $$(1/2 + 3) \\times 4$$ which gives 15.", reference="(1/2+3)*4")
    assert WrongAnswerFilter(verifier).check(s).reason == "skipped_undecided"


# ============================================ think_answer_mismatch: explicit conclusions only
# (issue: judge only a conclusion the thinking states explicitly; choices as choices, statements
# as statements; thinking cut mid-sentence, alternatives and re-checks are not conclusions)


@pytest.mark.parametrize(
    "thinking, answer, prompt, reason",
    [
        # an alternative box after the final one is not the conclusion
        (
            "So x = 5.\n\n**Final Answer**\n\\boxed{5}\n\nAlternatively, if x may be negative, \\boxed{-5}.",
            "\\boxed{5}",
            "q",
            None,
        ),
        # a re-check of a part after the conclusion: the answer agrees with the conclusion
        (
            "The total is 72, so the answer is 72. Let me double-check the first part: 40 + 40 = 80. So 80 then.",
            "\\boxed{72}",
            "q",
            None,
        ),
        # a result stated only in passing never rejects
        ("Half of 48 is 24. Then 24 + 48 = 72. Then 72 - 10 = 62.", "\\boxed{72}", "q", "skipped_undecided"),
        # a maybe is not a conclusion
        ("Maybe the answer is 20. I am not sure at all.", "\\boxed{17}", "q", "skipped_undecided"),
        # the thinking settles on one option, the answer states another (a bare option line)
        (
            "Cans are usually cylinders, so the answer should be C.",
            "A) circle",
            "Shape of a can? A) circle B) cone C) cylinder",
            "think_answer_mismatch",
        ),
        # statements compared as statements, not as option letters or numbers
        (
            "So the answer is that A is a knight and B is a knave.",
            "\\boxed{A is a knave and B is a knight}",
            "Who is who?",
            "think_answer_mismatch",
        ),
        (
            "So the answer is that A is a knight and B is a knave.",
            "**Answer:** A is a knight, and B is a knave.",
            "Who is who?",
            None,
        ),
        # an explicit choice; "day20" read as 20
        (
            "Both readings are possible. Thus, the answer is day20. So I'll go with that.",
            "\\boxed{39}",
            "q",
            "think_answer_mismatch",
        ),
        ("I'll go with the plain schedule, even though it totals 20.", "\\boxed{17}", "q", "think_answer_mismatch"),
        # thinking cut mid-sentence by an outside budget: nothing concluded
        ("So far 3 + 4 = 7, and the remaining part would take", "\\boxed{9}", "q", "skipped_budget_cut"),
        # prose conclusions are compared as text: undecided, not a number mismatch
        (
            "Therefore, the answer is to keep the one you picked.",
            "**Answer:** keep it, since 3/4 beats 5/8.",
            "q",
            "skipped_undecided",
        ),
    ],
)
def test_think_answer_mismatch_judges_explicit_conclusions_only(verifier, thinking, answer, prompt, reason):
    v = ThinkAnswerMismatchFilter(verifier).check(think(thinking, answer, prompt=prompt))
    passed = None if reason and reason.startswith("skipped") else reason is None
    assert (v.passed, v.reason) == (passed, reason), v.detail


# --- review findings (inputs that raised, or read a name as a choice or a place as a direction) ---


def test_answer_forms_that_used_to_raise_or_misread():
    from filters.lib.answer_forms import _items, part_equal
    from filters.lib.answers import choice_value
    from filters.lib.extract import numbers, same_number

    assert _items("192.168.0.1, 8080") is None  # a token no notation reads: no list, no IndexError
    assert choice_value("E. coli") is None and choice_value("(b) 1392") is not None  # an initial is no option
    assert not any(same_number(n, numbers("5")[0]) for n in numbers("1" * 400))  # 400 digits are not inf
    assert part_equal("北東", "1. 東京タワーが見えます。方角は北東です。", "") is True  # 東京 names no direction
