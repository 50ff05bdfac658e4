"""``format``: the sample has the shape its mode promises.

>>> f = FormatFilter()
>>> f.check(Sample("<think>\\nwork\\n</think>\\n\\n4", thinking_expected=True)).passed
True
>>> f.check(Sample("<think>\\nwork", thinking_expected=True, finish_reason="length")).reason
'truncated'
>>> f.check(Sample("<think>\\n\\n</think>\\n\\n4", thinking_expected=True)).reason
'empty_thinking'
>>> f.check(Sample("<think>\\nhmm\\n</think>\\n\\n4", thinking_expected=False)).reason
'thinking_in_no_think'
"""

from __future__ import annotations

from .base import Filter, Sample, Verdict, register


@register
class FormatFilter(Filter):
    """Think mode: exactly one closed, non-empty think block. No-think mode: an empty block.
    Both: no think tags (or a forced early-stop text) inside the answer, a non-empty answer, not
    cut off by the length cap."""

    name = "format"

    def check(self, s: Sample) -> Verdict:
        split = s.split
        if s.finish_reason == "repetition":  # the engine stopped a loop: the repetition filter's to judge
            return self.skip("skipped_loop_stopped", "the engine stopped the generation as a loop")
        if s.finish_reason == "length":
            where = "inside the think block" if split.opened and not split.closed else "in the answer"
            return self.reject("truncated", detail=f"generation hit max_tokens {where}")
        if split.opened and not split.closed:
            return self.reject("unclosed_think", detail="the think block is never closed")
        if not split.opened:
            return self.reject("missing_think_block", detail="the completion does not start with a think block")
        rest = s.completion.split(s.think_end, 1)[1]  # everything after the first block
        if s.think_start in rest and s.think_end in rest.split(s.think_start, 1)[1]:
            return self.reject("multiple_think_blocks", score=float(rest.count(s.think_start) + 1),
                               detail=f"{rest.count(s.think_start) + 1} think blocks; expected one")
        if s.early_stop and s.early_stop in rest:
            # The budget's forced text landed after the model had closed its thinking: vLLM 0.32's
            # CPU sampler detects the end of thinking by the whole forced string, not by </think>.
            return self.reject("budget_forced_in_answer",
                               detail="the thinking budget's early-stop text was forced after the think block closed")
        if s.think_start in rest or s.think_end in rest:
            return self.reject("think_tag_in_answer", detail="a stray think tag appears after the think block")
        if s.thinking_expected and not split.thinking.strip():
            return self.reject("empty_thinking", detail="think mode but the think block is empty")
        if not s.thinking_expected and split.thinking.strip():
            return self.reject("thinking_in_no_think", score=float(len(split.thinking)),
                               detail=f"no-think mode but the think block holds {len(split.thinking)} chars")
        if not split.answer.strip():
            return self.reject("empty_answer", detail="nothing after the think block")
        return self.ok()
