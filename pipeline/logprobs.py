"""Teacher log-probabilities for logit distillation (``output.logprobs``).

For every generated token the engine returns the top-k log-probabilities of the teacher's
distribution at that position (vLLM's ``raw_logprobs``: the model's own, before temperature,
top-p or penalties) and the log-probability of the token it sampled. Tokens the pipeline put in
itself (a budget's early-stop text, s1's "Wait") have none: they are marked ``forced``, with
zeros, and a student should not be taught them as the teacher's.

They are kept beside ``accepted/`` in ``logprobs/``, one part per accepted part under the same
name, one row per accepted sample (``sidecar_schema``): the prompt's and the completion's token
ids (so a student sees exactly the tokens the teacher scored), and per completion token the
forced mark, the sampled token's log-probability and the top-k ids and log-probabilities as
fixed-size lists, the values as float16. The tokenizer's and chat template's hashes are in the
part's metadata. ``pipeline.distill`` reads them back as student-ready batches.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import pyarrow as pa

FOLDER = "logprobs"
META_KEY = b"thinkmill.logprobs"


@dataclass
class TokenLogprobs:
    """Per completion token: the sampled token's log-probability, the top-k ids and
    log-probabilities, whether the pipeline forced it (then all zeros)."""

    k: int
    sampled: list[float] = field(default_factory=list)
    top_ids: list[list[int]] = field(default_factory=list)
    top: list[list[float]] = field(default_factory=list)
    forced: list[bool] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sampled)

    @classmethod
    def forced_tokens(cls, n: int, k: int) -> TokenLogprobs:
        """``n`` tokens the pipeline wrote itself."""
        return cls(k, [0.0] * n, [[0] * k for _ in range(n)], [[0.0] * k for _ in range(n)], [True] * n)

    @classmethod
    def of_vllm(cls, logprobs, token_ids: list[int], k: int) -> TokenLogprobs:
        """From a vLLM ``CompletionOutput.logprobs`` (a ``FlatLogprobs`` or a list of dicts
        ``token id -> Logprob``): per position the sampled token and the k best by rank.

        >>> from vllm.logprobs import Logprob
        >>> pos = [{5: Logprob(-2.0, 3), 1: Logprob(-0.1, 1), 2: Logprob(-1.5, 2)}]
        >>> t = TokenLogprobs.of_vllm(pos, [5], 2); (t.sampled, t.top_ids, t.top, t.forced)
        ([-2.0], [[1, 2]], [[-0.1, -1.5]], [False])
        """
        out = cls(k)
        for tok, pos in zip(token_ids, logprobs):
            ranked = sorted(((lp.rank or 0, tid, lp.logprob) for tid, lp in pos.items() if lp.rank), key=lambda x: x[0])
            best = ranked[:k] + [(0, 0, -1e4)] * (k - len(ranked[:k]))  # -1e4: exp() is 0, and no inf in a loss
            out.sampled.append(pos[tok].logprob if tok in pos else float("nan"))
            out.top_ids.append([t for _, t, _ in best])
            out.top.append([v for _, _, v in best])
            out.forced.append(False)
        return out

    def __add__(self, other: TokenLogprobs) -> TokenLogprobs:
        return TokenLogprobs(
            self.k,
            self.sampled + other.sampled,
            self.top_ids + other.top_ids,
            self.top + other.top,
            self.forced + other.forced,
        )

    def cut(self, n: int) -> TokenLogprobs:
        return TokenLogprobs(self.k, self.sampled[:n], self.top_ids[:n], self.top[:n], self.forced[:n])


def join(*parts: TokenLogprobs | int | None, k: int | None) -> TokenLogprobs | None:
    """Engine parts (``TokenLogprobs``) and forced runs (an int: that many tokens) in order; None
    when logprobs are off (``k`` None) or a part has none (an engine that returned none).

    >>> a = TokenLogprobs(1, [-0.5], [[3]], [[-0.5]], [False])
    >>> j = join(a, 2, a, k=1); (len(j), j.forced), join(a, 2, k=None), join(a, None, k=1)
    ((4, [False, True, True, False]), None, None)
    """
    if k is None or any(p is None for p in parts):
        return None
    out = TokenLogprobs(k)
    for p in parts:
        out = out + (TokenLogprobs.forced_tokens(p, k) if isinstance(p, int) else p)
    return out


def sidecar_schema(k: int) -> pa.Schema:
    half = pa.float16()
    return pa.schema(
        [
            ("sample_id", pa.string()),
            ("prompt_token_ids", pa.list_(pa.int32())),  # the prompt the engine saw (the last turn's)
            ("token_ids", pa.list_(pa.int32())),  # the completion it generated (and what was forced)
            ("forced", pa.list_(pa.bool_())),  # put in by the pipeline: no teacher logprobs
            ("logprob", pa.list_(half)),  # the sampled token's
            ("top_ids", pa.list_(pa.list_(pa.int32(), k))),
            ("top_logprobs", pa.list_(pa.list_(half, k))),
        ]
    )


#: Working columns that carry the logprobs from the generate stage to the sink.
WORKING = [
    ("lp_prompt_ids", pa.list_(pa.int32())),
    ("lp_token_ids", pa.list_(pa.int32())),
    ("lp_forced", pa.list_(pa.bool_())),
    ("lp_sampled", pa.list_(pa.float32())),
    ("lp_top_ids", pa.list_(pa.list_(pa.int32()))),
    ("lp_top", pa.list_(pa.list_(pa.float32()))),
]


def row_columns(prompt_ids: list[int], token_ids: list[int], lp: TokenLogprobs) -> dict:
    """The working columns of one sample (set by the generate stage)."""
    return {
        "lp_prompt_ids": prompt_ids,
        "lp_token_ids": token_ids,
        "lp_forced": lp.forced,
        "lp_sampled": lp.sampled,
        "lp_top_ids": lp.top_ids,
        "lp_top": lp.top,
    }


def sidecar(table: pa.Table, k: int, meta: dict) -> pa.Table | None:
    """The sidecar part of the accepted rows of ``table`` (``STREAM``), or None if they have no
    logprobs (a run without ``output.logprobs``)."""
    import pyarrow.compute as pc

    if "lp_token_ids" not in table.column_names:
        return None
    rows = table.filter(pc.invert(pc.is_null(table["lp_token_ids"])))
    if not rows.num_rows:
        return None
    schema = sidecar_schema(k)
    cols = {
        "sample_id": rows["sample_id"],
        "prompt_token_ids": rows["lp_prompt_ids"],
        "token_ids": rows["lp_token_ids"],
        "forced": rows["lp_forced"],
        "logprob": rows["lp_sampled"],
        "top_ids": rows["lp_top_ids"],
        "top_logprobs": rows["lp_top"],
    }
    out = pa.table({n: cols[n].cast(schema.field(n).type) for n in schema.names}, schema=schema)
    return out.replace_schema_metadata({META_KEY: json.dumps({"top_k": k, **meta}).encode()})


def tokenizer_meta(tokenizer) -> dict:
    """What a student must share with the teacher for these ids to mean the same: hashes of the
    tokenizer's vocabulary and of its chat template."""
    vocab = json.dumps(sorted(tokenizer.get_vocab().items()), ensure_ascii=False).encode()
    template = (getattr(tokenizer, "chat_template", None) or "").encode()
    return {
        "tokenizer_sha256": hashlib.sha256(vocab).hexdigest(),
        "chat_template_sha256": hashlib.sha256(template).hexdigest(),
        "logprobs_mode": "raw_logprobs",
    }


def settle(folder) -> dict:
    """At the end of a run: each sidecar part holds exactly the samples of the accepted part of
    its name (a resume's reconcile may have dropped some; a part whose accepted part is gone goes).
    -> the summary's ``logprobs`` block: samples, tokens, bytes on disk and per token."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    fs, root = folder._fs
    accepted = set(folder.part_names("accepted"))
    samples = tokens = size = 0
    for path in sorted(fs.glob(f"{root}/{FOLDER}/*.parquet")):
        name = path.rsplit("/", 1)[-1]
        if name not in accepted:
            fs.rm(path)
            continue
        with fs.open(f"{root}/accepted/{name}", "rb") as f:
            ids = pq.read_table(f, columns=["sample_id"])["sample_id"]
        with fs.open(path, "rb") as f:
            side = pq.read_table(f)
        keep = pc.is_in(side["sample_id"], ids)
        if not pc.all(keep).as_py():
            side = side.filter(keep)
            folder.write_part(FOLDER, name, side)
        samples += side.num_rows
        tokens += pc.sum(pc.list_value_length(side["token_ids"])).as_py() or 0
        size += fs.size(path)
    return {
        "samples": samples,
        "tokens": tokens,
        "bytes": size,
        "bytes_per_token": round(size / tokens, 2) if tokens else None,
        "folder": f"{folder.url}/{FOLDER}",
    }
