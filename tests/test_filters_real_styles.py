"""The filters on what real teachers write (issue 12): answers without boxes, local number
formats, conclusions in words, scripts per language, loops against legitimate structure; and
the labeled development set's targets."""

from __future__ import annotations

import pytest

from filters import FiltersConfig, Judge, Sample
from filters.language_mixing import LanguageMixingFilter
from filters.lib.answers import MathVerifier
from filters.lib.extract import final_span, main_number, numbers
from filters.repetition import RepetitionFilter
from filters.think_answer_mismatch import ThinkAnswerMismatchFilter
from filters.wrong_answer import WrongAnswerFilter


@pytest.fixture(scope="module")
def verifier():
    v = MathVerifier(timeout_s=60)
    yield v
    v.close()


def think(thinking: str, answer: str, **kw) -> Sample:
    return Sample(f"<think>\n{thinking}\n</think>\n\n{answer}", True, **kw)


@pytest.mark.parametrize(
    "answer, reference",
    [
        ("The answer is **(C) Nitrogen**", "C"),
        ("**Answer:** 12", "12"),
        ("答案是 13", "13"),
        ("Final Answer: 42", "42"),
        ("B", "B"),
        ("So the answer is \\boxed{\\text{B}}.", "B"),
        ("Therefore, Sophia can drive 300 miles.", "300"),
        ("\\boxed{180^\\circ}", "180"),
        ("\\boxed{48 \\text{ ways}}", "48"),
        ("The total is $1,210.", "1210"),
        ("Réponse : 34,00 €", "34"),
        ("**Respuesta:** 1.250 €", "1250"),
        ("\\boxed{276\\,000\\,\\$}", "276000"),
        ("**答え** $\\boxed{57,\\!500\\ \\text{ドル}}$ です。", "57500"),
        ("$$\\boxed{0{,}75}$$", "\\frac{3}{4}"),
        ("答え：１２個", "12"),
        ("উত্তর: ১২", "12"),
        ("Ответ: 42 рубля.", "42"),
        ("정답은 5입니다.", "5"),
        ("The answer is 25%.", "0.25"),
        ("x = \\dfrac{3}{4}", "0.75"),
    ],
)
def test_answers_as_real_teachers_state_them_are_read(verifier, answer, reference):
    v = WrongAnswerFilter(verifier).check(think("work", answer, reference=reference))
    assert v.passed is True, v.detail


@pytest.mark.parametrize(
    "answer, reference",
    [
        ("**Answer:** 13", "12"),
        ("The correct option is **(B)**.", "C"),
        ("Réponse : 35,00 €", "34"),
        ("答案是 14。", "13"),
    ],
)
def test_wrong_values_in_the_same_forms_are_wrong(verifier, answer, reference):
    v = WrongAnswerFilter(verifier).check(think("work", answer, reference=reference))
    assert (v.passed, v.reason) == (False, "wrong_answer"), v.detail


def test_free_text_against_a_textual_reference_is_undecided_and_the_setting_decides(verifier):
    s = think("work", "Both statements are false.", reference="False, False")
    assert WrongAnswerFilter(verifier).check(s).reason == "skipped_undecided"
    judge = Judge(FiltersConfig(order=["wrong_answer"], wrong_answer={"keep_undecided": False}))
    assert judge(s)[1] == "skipped_undecided"
    assert Judge(FiltersConfig(order=["wrong_answer"]))(s)[1] is None


def test_a_cut_off_answer_is_left_to_the_format_filter(verifier):
    s = Sample("<think>\nok\n</think>\n\nWe have \\sigma(28) = 7 \\times", True, reference="56", finish_reason="length")
    assert WrongAnswerFilter(verifier).check(s).reason == "skipped_unfinished"


@pytest.mark.parametrize(
    "thinking, answer, passed",
    [
        ("So there are 400 worker bees.", "\\boxed{400}", True),
        ("She reads 6 pages per day.", "**Answer:** 6", True),
        ("The vertex is at x = -3, and f(-3) = -5. So the minimum value is -5.", "\\boxed{-3}", False),
        ("4x = 20. Divide by 4: x = 5. Check: 4(5) - 3 = 17. Correct. So x = 5.", "\\boxed{x = 4}", False),
        ("So she has twelve left.", "\\boxed{11}", False),
        ("Both routes agree: one million milliliters.", "\\boxed{1,000,000}", True),
        ("三种方法都得到最小值是3，在 x = 2 处取得。", "\\boxed{3}", True),
        ("Fluorine is the most electronegative. The answer is (C).", "\\boxed{B}", False),
    ],
)
def test_the_thinking_conclusion_is_compared_by_value(verifier, thinking, answer, passed):
    prompt = "Which is most electronegative? A) O B) N C) F D) Cl" if "(C)" in thinking else "q"
    v = ThinkAnswerMismatchFilter(verifier).check(think(thinking, answer, prompt=prompt))
    assert v.passed is passed, v.detail
    assert "thinking concludes" in v.detail and "(" in v.detail  # says what it compared, and how


@pytest.mark.parametrize(
    "prompt, thinking, answer, reason",
    [
        # Japanese: kanji-only headings are Japanese, not Chinese
        (
            "3教科の合計得点を求めなさい。",
            "国語と数学と英語を足します。",
            "### 解答\n\n**計算過程**\n\n**合計得点:** 255点\n\n合計は **255点** です。",
            None,
        ),
        # English technical terms inside Chinese
        (
            "为什么深度学习要用 GPU？",
            "用户问为什么用 GPU。因为并行计算能力强。",
            "因为 GPU 有大量核心，NVIDIA 的 CUDA、PyTorch 和 TensorFlow 都对 GPU 做了优化。",
            None,
        ),
        # consistent English thinking for a Japanese prompt (s1.1, Qwen3)
        (
            "りんごが4個ずつ3箱あります。全部で何個ですか？",
            "The user asks in Japanese: 4 apples per box, 3 boxes. 4 times 3 is 12.",
            "4 × 3 = 12\n\n答え：12個",
            None,
        ),
        # a translation request
        (
            "次の文を英語に翻訳してください：今日は雨です。",
            "Translate: 今日は雨です。",
            "It is raining today.",
            "skipped_translation",
        ),
        # a Japanese answer that switches into Chinese sentences
        (
            "りんごが4個ずつ3箱あります。全部で何個ですか？",
            "4かける3は12です。",
            "全部で12個です。我们可以这样计算这个问题的答案。每个箱子里有四个苹果，所以总共是十二个。",
            "language_mixing",
        ),
        # a Spanish prompt answered in English
        (
            "Un jardín mide 12 m de largo y 8 m de ancho. ¿Cuál es su área?",
            "El área es largo por ancho: 12 por 8 es 96.",
            "The area of a rectangle is its length times its width, so the garden has an area of 96 square meters.",
            "language_mixing",
        ),
    ],
)
def test_language_is_judged_per_language_not_per_script(prompt, thinking, answer, reason):
    v = LanguageMixingFilter().check(think(thinking, answer, prompt=prompt))
    assert v.reason == reason, v.detail


def test_thinking_in_another_language_is_its_own_optional_rule():
    s = think(
        "The user asks in Japanese: 4 apples per box, 3 boxes. So 12.",
        "答え：12個",
        prompt="りんごが4個ずつ3箱あります。全部で何個ですか？",
    )
    assert LanguageMixingFilter().check(s).passed is True
    strict = LanguageMixingFilter(LanguageMixingFilter.Config(thinking_language="prompt"))
    assert strict.check(s).reason == "thinking_language"


def _long(parts: list[str], filler: int = 40) -> str:
    body = []
    for i, p in enumerate(parts):
        body.append(f"Step {i}: we compute {i} * 17 = {i * 17} and compare it with {i + 3} squared, {(i + 3) ** 2}.")
        body.append(p)
    return " ".join(body + [f"Extra check {k}: {k} + {k} = {2 * k}." for k in range(filler)])


@pytest.mark.parametrize(
    "thinking",
    [
        _long(["Therefore, the answer is 13 years."] * 7),  # a conclusion restated through a long trace
        " ".join(f"n = {n}: {n} is divisible by 7, so not prime." for n in range(7, 120, 7)),  # an enumeration
        "\n\n".join(
            x
            for k in range(3)
            for x in (  # a conclusion restated 3x, each after another check
                "So the answer is 13 years, since she is 13 years older than her brother.",
                f"Let me verify it another way, method {k + 1}: {20 + k} - {7 + k} = 13, and the ages add up.",
            )
        ),
    ],
)
def test_repeated_structure_with_changing_content_is_not_a_loop(thinking):
    v = RepetitionFilter().check(think(thinking, "\\boxed{13}"))
    assert v.passed is True, v.detail


@pytest.mark.parametrize(
    "thinking, reason",
    [
        ("Let me compute. " + "Wait, let me recompute 3*4 to be sure it is right. " * 8, "repeated_sentence"),
        (
            "Start. " + "So the value is 12 again here. Hmm, but maybe it is not twelve after all. " * 6,
            "repeated_sentence",
        ),
    ],
)
def test_loops_are_caught(thinking, reason):
    v = RepetitionFilter().check(think(thinking, "\\boxed{12}"))
    assert v.reason == reason, v.detail


def test_extraction_is_linear_on_unclosed_boxes():
    # 70 KB of unclosed \boxed{ took 40 s before (quadratic); now one pass (timed in make bench)
    assert final_span("\\boxed{" * 10_000) is None and final_span("\\boxed{" * 10_000 + "\\boxed{7}") == "7"
    assert main_number("**Answer:** 1 200 000 деталей").values == (1200000.0,)
    assert [n.values for n in numbers("１２ and ৪৫ and ١٢")] == [(12.0,), (45.0,), (12.0,)]


def test_the_development_set_meets_its_targets():
    """Per filter precision and recall >= 0.95 and >= 0.97 of the good samples accepted, on the
    hand-written set in real teachers' styles (``python -m jobs.filter_quality --errors`` shows
    every miss). The filters were tuned on it: this guards against regressions; the sets kept
    aside are the test."""
    from jobs.filter_quality import evaluate, load

    r = evaluate(load())
    assert r["samples"] >= 300
    assert r["good_accepted"] >= 0.97, r["misses"]
    for name, c in r["filters"].items():
        assert c["precision"] is not None and c["precision"] >= 0.95, (name, c, r["misses"])
        assert c["recall"] is not None and c["recall"] >= 0.95, (name, c, r["misses"])
