"""Teacher dialects: how a teacher family is prompted into a mode and how its output splits.

One base class does the work; each family is a tiny subclass registered by name,
the way ``vllm/reasoning/`` registers its parsers. A dialect owns:

- its think tags and the text a thinking budget forces (Qwen3's early-stop sentence);
- ``render``: a conversation + mode -> the exact prompt text the engine sees, through
  the teacher's own chat template (``enable_thinking``, soft flags);
- ``completion``: prompt-side prefill + generated text -> the assistant turn as the
  teacher wrote it (think block included), which is what ``messages`` stores;
- ``split``: that assistant turn -> thinking / answer;
- ``message`` / ``text``: that assistant turn as the ``messages`` entry the teacher's template
  renders back (Qwen3: the text is the content; gpt-oss: ``thinking`` and ``content``) and back;
- its recommended sampling per mode (a mode's unset sampling fields take these);
- ``check``: what of a job's modes it cannot make, as config errors naming the key.

Adding a teacher family is one subclass with ``name`` and what differs.
"""

from __future__ import annotations

from typing import ClassVar

from filters.lib.registry import Registry
from filters.lib.text import ThinkSplit, split_thinking

EARLY_STOP = "Considering the limited time by the user, I have to give the solution based on the thinking directly now."

_REGISTRY = Registry("dialect")


def register(cls: type[Dialect]) -> type[Dialect]:
    return _REGISTRY.add(cls)


def get_dialect(name: str) -> Dialect:
    return _REGISTRY.named(name)()


def dialect_names() -> list[str]:
    return _REGISTRY.names()


class Dialect:
    name: ClassVar[str] = ""
    think_start: ClassVar[str] = "<think>"
    think_end: ClassVar[str] = "</think>"
    #: The sentence a thinking budget forces before the closing tag (Qwen3's recipe).
    early_stop: ClassVar[str] = EARLY_STOP
    #: What an empty think block looks like when the model (or the template) writes one.
    empty_block: ClassVar[str] = "<think>\n\n</think>\n\n"
    #: vLLM reasoning parser name for the engine-native budget.
    reasoning_parser: ClassVar[str] = "qwen3"
    #: Whether ``enable_thinking`` in the chat template is the hard switch.
    has_thinking_switch: ClassVar[bool] = True
    #: Whether the teacher's own markup is special tokens, kept when its output is decoded.
    keeps_special_tokens: ClassVar[bool] = False
    #: Whether ``reasoning_effort`` (gpt-oss's ``Reasoning:`` levels) means anything to it.
    has_reasoning_effort: ClassVar[bool] = False
    #: Recommended sampling, thinking (True) and non-thinking (False). Plain sampling by default.
    sampling_defaults: ClassVar[dict[bool, dict]] = {
        True: {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "min_p": 0.0},
        False: {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "min_p": 0.0},
    }

    def sampling(self, mode, thinking: bool | None = None) -> dict:
        """A mode's sampling with its unset (``null``) fields taken from this dialect's defaults
        for thinking or non-thinking generation: ``thinking`` when given (a sample or turn whose
        drawn flag decides it), else the mode's own default.

        >>> from pipeline.config import ModeConfig
        >>> s = get_dialect("qwen3").sampling(ModeConfig(name="nt", thinking=False, sampling={"max_tokens": 64}))
        >>> s["temperature"], s["top_p"], s["top_k"], s["max_tokens"]
        (0.7, 0.8, 20, 64)
        >>> get_dialect("qwen3").sampling(ModeConfig(name="soft", flag="random"), thinking=False)["temperature"]
        0.7
        """
        given = mode.sampling.model_dump()
        defaults = self.sampling_defaults[mode.thinks if thinking is None else thinking]
        return {k: defaults[k] if v is None else v for k, v in given.items()}

    def budget_end_str(self) -> str:
        """Forced when a thinking budget runs out: early-stop sentence, then the closing tag."""
        return f"\n\n{self.early_stop}\n{self.think_end}"

    # -- prompting ---------------------------------------------------------------------------
    def with_flag(self, messages: list[dict], flag: str | None, turn: str = "user") -> list[dict]:
        """Append a soft flag (``/think``, ``/no_think``) to the latest user turn or the system turn."""
        if not flag:
            return messages
        msgs = [dict(m) for m in messages]
        if turn == "system":
            if msgs and msgs[0]["role"] == "system":
                msgs[0]["content"] = f"{msgs[0]['content']} {flag}"
            else:
                msgs.insert(0, {"role": "system", "content": flag})
            return msgs
        for m in reversed(msgs):
            if m["role"] == "user":
                m["content"] = f"{m['content']} {flag}"
                return msgs
        raise ValueError("cannot place a user-turn flag: the conversation has no user turn")

    def render(self, tokenizer, messages: list[dict], thinking: bool, effort: str | None = None) -> str:
        """The prompt text for ``messages`` in the given mode (generation prompt included)."""
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, enable_thinking=thinking
        )

    def check(self, generation) -> None:
        """Raise ``ValueError`` naming the key of the first mode setting this dialect cannot make."""
        for i, m in enumerate(generation.modes):
            if m.reasoning_effort is not None and not self.has_reasoning_effort:
                raise ValueError(
                    f"generation.modes.{i}.reasoning_effort: gpt-oss's reasoning effort needs "
                    f"teacher.dialect 'gpt-oss' (this teacher's is {self.name!r})"
                )

    def prefill(self, prompt: str) -> str:
        """Part of the assistant turn already in the prompt (an open or empty think block)."""
        if prompt.endswith(self.empty_block):
            return self.empty_block
        if prompt.endswith(f"{self.think_start}\n"):
            return f"{self.think_start}\n"
        return ""

    # -- reading -----------------------------------------------------------------------------
    def completion(self, prompt: str, generated: str) -> str:
        """The assistant turn as the teacher wrote it: prompt-side prefill + generated text."""
        return self.prefill(prompt) + generated

    def split(self, assistant_text: str) -> ThinkSplit:
        return split_thinking(assistant_text, self.think_start, self.think_end)

    def message(self, assistant_text: str) -> dict:
        """The ``messages`` entry of an assistant turn written as ``assistant_text``."""
        return {"role": "assistant", "content": assistant_text}

    def text(self, message: dict) -> str:
        """An assistant ``messages`` entry -> the turn's text as the teacher wrote it (``message``'s inverse)."""
        return message["content"]


@register
class Qwen3(Dialect):
    """Qwen3 hybrid: ``enable_thinking`` hard switch, ``/think`` ``/no_think`` soft flags."""

    name = "qwen3"
    # the Qwen3 model cards' recommendation
    sampling_defaults = {
        True: {"temperature": 0.6, "top_p": 0.95, "top_k": 20, "min_p": 0.0},
        False: {"temperature": 0.7, "top_p": 0.8, "top_k": 20, "min_p": 0.0},
    }


@register
class R1(Dialect):
    """DeepSeek-R1-style think-only teachers: the template opens ``<think>\\n`` itself and has no
    switch, so no-think is made by prefilling an empty think block (as AdaptThink does)."""

    name = "r1"
    reasoning_parser = "deepseek_r1"
    has_thinking_switch = False
    # DeepSeek-R1's usage recommendation (temperature 0.5-0.7, 0.6 advised; top-p 0.95), either mode
    sampling_defaults = {
        True: {"temperature": 0.6, "top_p": 0.95, "top_k": -1, "min_p": 0.0},
        False: {"temperature": 0.6, "top_p": 0.95, "top_k": -1, "min_p": 0.0},
    }

    def render(self, tokenizer, messages: list[dict], thinking: bool) -> str:
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if thinking:
            return prompt
        if prompt.endswith(f"{self.think_start}\n"):
            prompt = prompt[: -len(f"{self.think_start}\n")]
        return prompt + self.empty_block


@register
class GptOss(Dialect):
    """gpt-oss's harmony format: the reasoning on the ``analysis`` channel, the answer on ``final``.

    The template opens the assistant turn (``<|start|>assistant``); the model writes
    ``<|channel|>analysis<|message|>`` + reasoning + ``<|end|>``, then
    ``<|start|>assistant<|channel|>final<|message|>`` + answer, then ``<|return|>``. So the
    "think tags" here are the analysis channel's opening and everything from its end to the
    final channel's text. Those are special tokens: the output is decoded keeping them.

    ``messages`` holds the turn as gpt-oss's template takes it back: ``thinking`` (the analysis)
    and ``content`` (the final answer); rendered with the template, the conversation gives back the
    exact prompt and completion (``<|return|>`` last). A turn cut inside its analysis has no final
    message: ``content`` is null. Effort is the template's ``reasoning_effort`` (``Reasoning:``
    in the system message). There is no non-thinking mode, no soft flag, and vLLM's engine
    budget is not used: a budget closes the analysis channel (two_stage) with no sentence added.
    """

    name = "gpt-oss"
    think_start = "<|channel|>analysis<|message|>"
    think_end = "<|end|><|start|>assistant<|channel|>final<|message|>"
    final_only = "<|channel|>final<|message|>"
    early_stop = ""
    empty_block = ""
    reasoning_parser = "openai_gptoss"
    has_thinking_switch = False
    keeps_special_tokens = True
    has_reasoning_effort = True
    ends = ("<|return|>", "<|call|>", "<|endoftext|>")
    # OpenAI's gpt-oss recommendation: temperature 1.0, top_p 1.0
    sampling_defaults = {
        True: {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "min_p": 0.0},
        False: {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "min_p": 0.0},
    }

    def budget_end_str(self) -> str:
        """A budget closes the analysis and opens the final channel (no sentence: gpt-oss has no recipe)."""
        return self.think_end

    def render(self, tokenizer, messages: list[dict], thinking: bool, effort: str | None = None) -> str:
        kw = {"reasoning_effort": effort} if effort else {}
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **kw)

    def prefill(self, prompt: str) -> str:
        return ""

    def completion(self, prompt: str, generated: str) -> str:
        for end in self.ends:  # the stop token, decoded with the rest (special tokens are kept)
            if generated.endswith(end):
                return generated[: -len(end)]
        return generated

    def split(self, assistant_text: str) -> ThinkSplit:
        """Exactly at the channel markers, nothing stripped (the channels' text is the messages')."""
        t = assistant_text
        if not t.startswith(self.think_start):
            answer = t[len(self.final_only) :] if t.startswith(self.final_only) else t
            return ThinkSplit("", answer, False, self.think_end in t, t.count(self.think_end))
        thinking, closed, answer = t[len(self.think_start) :].partition(self.think_end)
        return ThinkSplit(thinking, answer, True, bool(closed), t.count(self.think_end))

    def message(self, assistant_text: str) -> dict:
        s = self.split(assistant_text)
        if s.opened:
            return {"role": "assistant", "thinking": s.thinking, "content": s.answer if s.closed else None}
        return {"role": "assistant", "content": s.answer}

    def text(self, message: dict) -> str:
        thinking, content = message.get("thinking"), message["content"]
        if thinking is None:
            return self.final_only + content
        return self.think_start + thinking + ("" if content is None else self.think_end + content)

    def check(self, generation) -> None:
        super().check(generation)
        for i, m in enumerate(generation.modes):
            key = f"generation.modes.{i}"
            if not m.thinking:
                raise ValueError(
                    f"{key}.thinking: gpt-oss always reasons (no non-thinking mode); "
                    f"use reasoning_effort: low for the shortest analysis"
                )
            if m.flag is not None:
                raise ValueError(f"{key}.flag: gpt-oss has no /think or /no_think flags; set reasoning_effort")
            if m.forces_thinking:
                raise ValueError(
                    f"{key}.min_thinking_tokens: s1's forcing is built for think tags, not yet for the harmony channels"
                )
            if m.budget_strategy == "engine" and any(b is not None for b in m.budgets):
                raise ValueError(
                    f"{key}.budget_strategy: 'engine' (vLLM's thinking_token_budget) is not used with "
                    f"gpt-oss; 'two_stage' closes the analysis channel"
                )
        if generation.adaptive is not None:
            raise ValueError("generation.adaptive: chooses between thinking and not; gpt-oss always reasons")
