"""Filter throughput on synthetic ~8k-token reasoning traces (per filter, samples per second per
core), and the answer extractor on its worst known input."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path


def synthetic_traces(n: int, seed: int = 0) -> list:
    """8k-token reasoning traces (English ~4 chars/token, Chinese ~1.5 chars/token), varied."""
    import random

    from filters import Sample
    from pipeline.dialects import EARLY_STOP

    rnd = random.Random(seed)
    out = []
    for i in range(n):
        if i % 2 == 0:  # English, structured steps with changing values: ~32k chars
            a = rnd.randint(10, 99)
            steps = [
                f"Step {k}: take the partial sum {a * k} and add {a} to get {a * (k + 1)}; "
                f"checking parity, {a * (k + 1)} is {'even' if a * (k + 1) % 2 == 0 else 'odd'}. "
                f"Then we compare it with {rnd.randint(100, 9999)} and note the difference."
                for k in range(210)
            ]
            prompt = f"What is {a} times 171?"
            answer = f"The answer is \\boxed{{{a * 171}}}."
        else:  # Chinese: ~12k chars
            a = rnd.randint(10, 99)
            steps = [
                f"第{k}步：把部分和 {a * k} 加上 {a} 得到 {a * (k + 1)}，"
                f"它是{'偶数' if a * (k + 1) % 2 == 0 else '奇数'}。"
                f"再和 {rnd.randint(100, 9999)} 比较，记下差值。"
                for k in range(260)
            ]
            prompt = f"{a} 乘以 261 等于多少？"
            answer = f"答案是 \\boxed{{{a * 261}}}。"
        thinking = "\n".join(steps) + f"\nSo the answer is {a * (171 if i % 2 == 0 else 261)}."
        value = a * (171 if i % 2 == 0 else 261)
        # every other pair of references is LaTeX, so wrong_answer takes the math-verify path half the time
        reference = str(value) if i % 4 < 2 else f"\\frac{{{2 * value}}}{{2}}"
        out.append(
            Sample(
                f"<think>\n{thinking}\n</think>\n\n{answer}",
                True,
                prompt=prompt,
                reference=reference,
                early_stop=EARLY_STOP,
            )
        )
    return out


def bench_filters(n: int = 200) -> str:
    """Samples/s on one core for each filter, on 8k-token traces."""
    from filters import FiltersConfig, build_filters

    samples = synthetic_traces(n)
    eval_file = Path(tempfile.mkdtemp()) / "eval.jsonl"
    eval_file.write_text(
        "\n".join(
            f'{{"prompt": "Natalia sold clips to {i} of her friends in April and then '
            'she sold half as many clips in May"}}'
            for i in range(5000)
        )
    )
    cfg = FiltersConfig(
        order=[
            "format",
            "wrong_answer",
            "repetition",
            "language_mixing",
            "think_answer_mismatch",
            "guesswork",
            "contamination",
        ],
        contamination={"eval_files": [str(eval_file)]},
    )
    rows = []
    for f in build_filters(cfg):
        f.check(samples[0])  # warm-up (math-verify's child process starts here)
        started = time.process_time(), time.perf_counter()
        verdicts = [f.check(s) for s in samples]
        cpu, wall = time.process_time() - started[0], time.perf_counter() - started[1]
        # wrong_answer / mismatch spend their time in the math-verify child: count wall time for them
        spent = wall if f.name in ("wrong_answer", "think_answer_mismatch") else cpu
        rate = n / spent
        target = (
            "bounded (timeout_s 5 per sample)" if f.name == "wrong_answer" else ("met" if rate >= 200 else "NOT met")
        )
        outcome = {str(v.reason) for v in verdicts}
        rows.append(f"| `{f.name}` | {rate:,.0f} | {1000 * spent / n:.2f} | {target} | {', '.join(sorted(outcome))} |")
    chars = sum(len(s.completion) for s in samples) / n
    return "\n".join(
        [
            "| filter | samples/s (1 core) | ms / sample | target >= 200/s | verdict reasons seen |",
            "|---|---:|---:|---|---|",
            *rows,
            "",
            f"{n} synthetic traces of ~8k tokens (mean {chars:,.0f} chars: English ~32k chars, Chinese ~12k chars), "
            "structured steps with changing numbers, one filter at a time in one process. CPU time of the process, "
            "except `wrong_answer` and `think_answer_mismatch`, which compare in a math-verify child process "
            "(wall time); half the references are plain numbers (compared directly) and half LaTeX (math-verify). "
            "`contamination` against 5,000 evaluation items.",
            "",
            _unclosed_boxes(),
        ]
    )


def _unclosed_boxes() -> str:
    """The answer extractor on the worst input known: a long run of unclosed ``\\boxed{`` (it was
    quadratic: 35 KB took 9 s, 70 KB 40 s)."""
    from filters.lib.extract import final_span

    text = "\\boxed{" * 10_000  # 70 KB
    t = time.process_time()
    final_span(text)
    return f"Answer extraction over 70 KB of unclosed `\\boxed{{`: {1000 * (time.process_time() - t):.1f} ms (linear)."
