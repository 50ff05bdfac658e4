"""Student-ready batches from a run's teacher logprobs (``output.logprobs``), and the forward-KL
loss of logit distillation over them.

``batches(run_dir)`` reads ``logprobs/`` (``pipeline.logprobs``), each part beside the accepted
part of its name, and yields padded tensors: ``input_ids`` (the exact prompt and completion
tokens the teacher saw and wrote), ``attention_mask``, ``completion_mask`` (the completion's
tokens the teacher generated; forced ones are out), and at each of those positions the
teacher's top-k ids and log-probabilities (``teacher_ids``, ``teacher_logprobs``, zeros
elsewhere). Position ``t``'s teacher distribution is the one token ``t`` was drawn from, so a
student's logits at ``t - 1`` are compared with it, as in next-token training.

``forward_kl(student_logits, batch)``: KL(teacher || student) per scored token over the
teacher's top-k, both renormalized over those k tokens, averaged over the scored tokens. With the
teacher as its own student it is ~0 (float16 storage); it is what a distillation trainer adds to
(or uses in place of) the SFT loss.

Usage::

    for batch in batches("out/run", batch_size=4):
        logits = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        loss = forward_kl(logits, batch)
"""

from __future__ import annotations

from collections.abc import Iterator


def rows(run_dir: str) -> Iterator[dict]:
    """The sidecar rows of the run's accepted samples, part by part (local path or fsspec URL)."""
    import pyarrow.parquet as pq

    from .logprobs import FOLDER
    from .run_folder import RunFolder

    folder = RunFolder(run_dir)
    fs, root = folder._fs
    accepted = set(folder.part_names("accepted"))
    for path in sorted(fs.glob(f"{root}/{FOLDER}/*.parquet")):
        if path.rsplit("/", 1)[-1] in accepted:
            with fs.open(path, "rb") as f:
                yield from pq.read_table(f).to_pylist()


def batches(run_dir: str, batch_size: int = 8, pad_id: int = 0) -> Iterator[dict]:
    chunk: list[dict] = []
    for r in rows(run_dir):
        chunk.append(r)
        if len(chunk) == batch_size:
            yield collate(chunk, pad_id)
            chunk = []
    if chunk:
        yield collate(chunk, pad_id)


def collate(chunk: list[dict], pad_id: int = 0) -> dict:
    """Sidecar rows -> padded tensors (right padding)."""
    import torch

    k = len(chunk[0]["top_ids"][0]) if chunk[0]["top_ids"] else 1
    length = max(len(r["prompt_token_ids"]) + len(r["token_ids"]) for r in chunk)
    n = len(chunk)
    out = {
        "input_ids": torch.full((n, length), pad_id, dtype=torch.long),
        "attention_mask": torch.zeros((n, length), dtype=torch.long),
        "completion_mask": torch.zeros((n, length), dtype=torch.bool),
        "teacher_ids": torch.zeros((n, length, k), dtype=torch.long),
        "teacher_logprobs": torch.zeros((n, length, k), dtype=torch.float32),
        "sample_id": [r["sample_id"] for r in chunk],
    }
    for i, r in enumerate(chunk):
        p, c = len(r["prompt_token_ids"]), len(r["token_ids"])
        out["input_ids"][i, : p + c] = torch.tensor(r["prompt_token_ids"] + r["token_ids"])
        out["attention_mask"][i, : p + c] = 1
        if c:
            out["completion_mask"][i, p : p + c] = ~torch.tensor(r["forced"])
            out["teacher_ids"][i, p : p + c] = torch.tensor(r["top_ids"], dtype=torch.long)
            out["teacher_logprobs"][i, p : p + c] = torch.tensor(r["top_logprobs"], dtype=torch.float32)
    return out


def forward_kl(student_logits, batch: dict):
    """Mean over the scored tokens of KL(teacher || student) on the teacher's top-k."""
    import torch

    mask = batch["completion_mask"][:, 1:]
    logp = torch.log_softmax(student_logits[:, :-1].float(), dim=-1)  # predicts token t from t - 1
    student = torch.gather(logp, -1, batch["teacher_ids"][:, 1:])
    student = student - torch.logsumexp(student, dim=-1, keepdim=True)  # renormalized over the top-k
    teacher = batch["teacher_logprobs"][:, 1:]
    teacher = teacher - torch.logsumexp(teacher, dim=-1, keepdim=True)
    kl = (teacher.exp() * (teacher - student)).sum(-1)
    return (kl * mask).sum() / mask.sum().clamp(min=1)
