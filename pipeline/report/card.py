"""The dataset card: ``README.md`` in a run folder, with the Hugging Face dataset-card YAML header.

It says what made the set (teacher, modes, budgets, sampling, filters), what the run holds (counts
by outcome and reason), every column and which ones this kind of run leaves empty by design, how
to load it (``datasets``, TRL), and the license the config gives (``output.license``). The YAML
header's ``configs`` points at ``accepted/`` (split ``train``) and ``rejected/``, so
``datasets.load_dataset(RUN_DIR)`` loads the folder as the card describes it.
"""

from __future__ import annotations

import hashlib
import json

#: every column of accepted/ and rejected/ rows, what it holds; ``when`` (a run-kind test over the
#: job config) says when it is filled, absent = always
COLUMNS: list[tuple[str, str, str | None]] = [
    ("sample_id", "deterministic id of the sample (prompt, mode, budget, index, generation settings)", None),
    ("prompt_id", "the input row's id, or a hash of its content", None),
    ("run_id", "the run that made it", None),
    ("source", "the input row's source label (`input.default_source` when it has none)", None),
    ("location", "the input row it came from: `file:line` or `file#rowN`", None),
    (
        "messages",
        "the conversation, ending in the teacher's turn exactly as it wrote it (think block included; "
        "gpt-oss: `thinking` holds the analysis channel, `content` the final one)",
        None,
    ),
    ("prompt", "TRL prompt-completion: `messages` up to the last user turn", None),
    ("completion", "TRL prompt-completion: the teacher's turn", None),
    ("thinking", "the think block's text (empty for no-think)", None),
    ("answer", "the text after the think block", None),
    ("mode", "the generation mode's name", None),
    ("flag", "the soft flag (`/think`, `/no_think`) the last turn follows", "flags"),
    ("flag_turn", "where the flag was put: `user` or `system`", "flags"),
    ("turns", "per assistant turn: its flag, whether it thought, whether it followed, its reference", "multi_turn"),
    ("thinking_budget", "the thinking budget in tokens (null: none)", "budgets"),
    ("budget_strategy", "`two_stage` or `engine` (null: no budget)", "budgets"),
    ("budget_hit", "whether the thinking reached the budget and was closed by force", None),
    ("min_thinking_tokens", "s1's forcing: the least thinking asked for (null: not forced)", "forcing"),
    ("extensions", "s1's forcing: times an early end of thinking was replaced by the continuation word", "forcing"),
    ("unforced_thinking_tokens", "s1's forcing: the thinking when the teacher first ended it", "forcing"),
    (
        "reasoning_effort",
        "gpt-oss's `Reasoning:` level the sample was made at (null: the template's default)",
        "effort",
    ),
    ("finish_reason", "`stop`, `length` (max_tokens), `repetition` (stopped as a loop)", None),
    ("prompt_tokens", "tokens of the rendered prompt", None),
    ("thinking_tokens", "tokens of the thinking (forced early-stop text not counted)", None),
    ("answer_tokens", "tokens of the answer", None),
    ("completion_tokens", "tokens the engine generated", None),
    ("reference", "the input's reference answer (null: none given)", None),
    ("extracted_answer", "the value the answer states (`\\boxed{}`, an answer phrase, or the last value line)", None),
    ("teacher", "the teacher (`teacher.name`, or the model's absolute path)", None),
    ("sampling", "the resolved sampling parameters", None),
    ("seed", "the request's seed", None),
    ("sample_index", "which of the prompt's samples in its mode and budget", None),
    ("verdicts", "every filter's verdict: filter, passed, reason, score, detail", None),
    ("reject_reason", "the first failing filter's reason (rejected rows)", None),
    ("acc_think", "adaptive runs: the prompt's verified accuracy in think mode", "adaptive"),
    ("acc_no_think", "adaptive runs: the prompt's verified accuracy in no-think mode", "adaptive"),
    ("chosen_mode", "adaptive runs: the mode the rule chose for the prompt", "adaptive"),
    ("prompt_samples", "sample-until-verified runs: the samples its prompt got in its mode and budget", "verified"),
    ("prompt_accepted", "sample-until-verified runs: how many of them passed the filters", "verified"),
    ("prompt_pass_rate", "sample-until-verified runs: their ratio, the prompt's difficulty", "verified"),
    ("prompt_text", "the exact prompt text the engine saw", "keep_prompt_text"),
]


def run_kind(cfg) -> dict[str, bool]:
    """Which optional parts of the contract this job fills."""
    g = cfg.generation
    return {
        "flags": any(m.flag for m in g.modes) or any(m.turns > 1 for m in g.modes),
        "multi_turn": any(m.turns > 1 for m in g.modes),
        "budgets": any(b is not None for m in g.modes for b in m.budgets),
        "forcing": any(m.forces_thinking for m in g.modes),
        "effort": any(m.reasoning_effort is not None for m in g.modes),
        "adaptive": g.adaptive is not None,
        "verified": g.accepted_per_prompt is not None,
        "keep_prompt_text": cfg.output.keep_prompt_text,
    }


def _count(summary: dict) -> str:
    n = summary.get("accepted", 0) + summary["rejected"]["total"]
    return next(
        c
        for limit, c in (
            (1e3, "n<1K"),
            (1e4, "1K<n<10K"),
            (1e5, "10K<n<100K"),
            (1e6, "100K<n<1M"),
            (1e7, "1M<n<10M"),
            (float("inf"), "10M<n<100M"),
        )
        if n < limit
    )


def _configs(parts: dict[str, list[str]] | None) -> list[dict]:
    """The card's one config: a split per folder that has parts (``datasets`` refuses a pattern
    that matches nothing), named after those parts (named by their rows). ``datasets`` caches a
    local folder by its card alone, so two runs with the same card text would load each other's
    cached rows (seen: a run folder of the same name under another path).

    >>> [c] = _configs({"accepted": ["part-1.parquet"], "rejected": []})
    >>> c["data_files"], c["default"]
    ([{'split': 'train', 'path': 'accepted/*.parquet'}], True)
    >>> c["config_name"] != _configs({"accepted": ["part-2.parquet"], "rejected": []})[0]["config_name"]
    True
    >>> _configs({"accepted": [], "rejected": []})
    []
    """
    if not parts or not any(parts.values()):
        return []
    splits = [
        {"split": split, "path": f"{folder}/*.parquet"}
        for split, folder in (("train", "accepted"), ("rejected", "rejected"))
        if parts.get(folder)
    ]
    names = "\n".join(f"{folder}/{name}" for folder in sorted(parts) for name in parts[folder])
    return [
        {"config_name": f"run-{hashlib.sha256(names.encode()).hexdigest()[:12]}", "default": True, "data_files": splits}
    ]


def _header(cfg, summary: dict, parts: dict[str, list[str]] | None) -> str:
    meta = {
        "license": cfg.output.license or "unknown",
        "pretty_name": f"thinkmill {summary['run_id']}",
        "task_categories": ["text-generation"],
        "tags": ["thinkmill", "reasoning", "distillation", "sft"],
        "size_categories": [_count(summary)],
    }
    if configs := _configs(parts):
        meta["configs"] = configs
    # JSON is YAML: no YAML writer needed, and every value is quoted safely
    return "---\n" + "\n".join(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in meta.items()) + "\n---\n"


def _modes(cfg) -> str:
    rows = []
    for m in cfg.generation.modes:
        s = m.sampling
        budgets = ", ".join("none" if b is None else str(b) for b in m.budgets)
        least = (
            (
                ", ".join("none" if b is None else str(b) for b in m.min_thinkings)
                + f" ({m.continuation!r}, up to {m.max_extensions})"
            )
            if m.forces_thinking
            else "-"
        )
        rows.append(
            f"| `{m.name}` | {'yes' if m.thinking else 'no'} | {m.flag or '-'} | {m.turns} | {budgets} "
            f"| {least} | {m.budget_strategy} | {s.temperature} / {s.top_p} / {s.top_k} | {s.max_tokens} |"
        )
    return "\n".join(
        [
            "| mode | thinking | flag | turns | thinking budgets | min thinking (s1) | budget strategy "
            "| temperature / top_p / top_k | max_tokens |",
            "|---|---|---|---:|---|---|---|---|---:|",
            *rows,
        ]
    )


def _logprobs(s: dict) -> str:
    """The teacher-logprobs sidecar, if the run kept one (``output.logprobs``)."""
    lp = s.get("logprobs")
    if not lp:
        return ""
    return (
        f"\n`logprobs/` holds the teacher's top-{lp['top_k']} log-probabilities of every accepted sample's "
        f"completion ({lp['samples']} samples, {lp['tokens']} tokens, {lp['bytes']} bytes; one part per accepted "
        f"part, same name; `pipeline.distill` in thinkmill reads them as student batches).\n"
    )


def _reasons(block: dict) -> str:
    return ", ".join(f"`{k}` {v}" for k, v in block["by_reason"].items()) or "none"


def render(cfg, summary: dict, parts: dict[str, list[str]] | None = None) -> str:
    """The card's text, from the job config, the run's summary and its parts' names per folder
    (``RunFolder.part_names``; none given: no ``configs`` in the header)."""
    kind = run_kind(cfg)
    empty = [name for name, _, when in COLUMNS if when and not kind[when]]
    columns = "\n".join(
        f"| `{name}` | {about} |" + (" empty in this run |" if name in empty else " |") for name, about, _ in COLUMNS
    )
    s, g = summary, cfg.generation
    earlier = s.get("earlier", {}).get("prompts", 0)
    return f"""{_header(cfg, summary, parts)}
# thinkmill run `{s["run_id"]}`

Supervised fine-tuning data distilled from **{s["teacher"]}** (dialect `{cfg.teacher.dialect}`) by
thinkmill: every prompt answered by the teacher in the modes below, each sample
judged by the rejection filters; `accepted/` is the training set, `rejected/` what the filters threw away
(with their verdicts), `errors/` what could not be made, with the reason.

## What made it

- Teacher: `{s["teacher"]}`, {cfg.teacher.replicas} replica(s), engine seed {cfg.teacher.engine.seed},
  `max_model_len` {cfg.teacher.engine.max_model_len}.
- {g.samples_per_prompt} sample(s) per prompt per mode and budget, generation seed {g.seed}
  {"; modes mixed by weight " + json.dumps(g.mix) if g.mix else ""}{
        "; adaptive mode choice (" + g.adaptive.rule + ")" if g.adaptive else ""
    }.
- Filters, in order: {", ".join(f"`{f}`" for f in cfg.filters.order) or "none"}.
- Generation fingerprint `{s.get("fingerprint", "-")}` (runs with the same one continue each other).

{_modes(cfg)}

## What it holds

| | samples |
|---|---:|
| prompts read | {s["inputs"]} |
| samples expected | {s["expected_samples"]} |
| accepted | {s["accepted"]} |
| rejected | {s["rejected"]["total"]} |
| errors | {s["errors"]["total"]} |
| generated by an earlier run (incremental) | {earlier * s["samples_per_input"]} |

Rejected by reason: {_reasons(s["rejected"])}. Errors by reason: {_reasons(s["errors"])}.
{_logprobs(s)}
## Columns

`accepted/` and `rejected/` share one schema (integers are `int64`; `pandas.read_parquet` reads them as
`Int64`, a null as `<NA>`). Columns marked "empty in this run" are null by design for this kind of run.

| column | what it holds | |
|---|---|---|
{columns}

## Loading it

```python
import datasets
train = datasets.load_dataset("parquet", data_dir="{s["output"]}/accepted", split="train")
```

With TRL, as loaded (the `prompt` / `completion` columns: the loss covers the teacher's turn only):

```python
from trl import SFTConfig, SFTTrainer
trainer = SFTTrainer(model=STUDENT, train_dataset=train, args=SFTConfig(output_dir="student"))
```

or the whole conversation with the loss on the assistant's tokens: `train.select_columns(["messages"])` and
`SFTConfig(assistant_only_loss=True)` (the student's chat template needs `{{% generation %}}` markers).

## License

`{cfg.output.license or "unknown"}` (from the job's `output.license`). The samples are the teacher's
outputs: its license and terms of use apply to them.
"""
