"""Train the tiny teacher (Qwen3ForCausalLM) on the synthetic mix, deterministically from a seed."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    vocab_size: int = 1024
    hidden_size: int = 192
    intermediate_size: int = 512
    num_layers: int = 3
    num_heads: int = 3
    num_kv_heads: int = 3
    head_dim: int = 64  # vLLM's CPU attention supports 32, 64, 80, ... (not 16)
    max_position_embeddings: int = 1024
    steps: int = 3400
    batch_size: int = 32
    bucket_batches: int = 8  # draw this many batches at once and group rows by length (less padding)
    lr: float = 5e-3
    warmup_steps: int = 60
    weight_decay: float = 0.01
    threads: int = 2


def model_config(cfg: TrainConfig, tokenizer):
    from transformers import Qwen3Config

    return Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads,
        head_dim=cfg.head_dim,
        max_position_embeddings=cfg.max_position_embeddings,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
        torch_dtype="float32",
    )


def train(cfg: TrainConfig, tokenizer, out_dir: Path, log=print, model=None, example=None):
    """Train from scratch (or fine-tune ``model``) on ``example(rng) -> (ids, labels)``, by default
    the Qwen3-style mix of ``data.py``."""
    import torch
    from transformers import Qwen3ForCausalLM

    from .data import encode, sample_example

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = random.Random(cfg.seed + 1)
    model = model if model is not None else Qwen3ForCausalLM(model_config(cfg, tokenizer))
    example = example or (lambda r: encode(tokenizer, sample_example(r)))
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params / 1e6:.2f}M parameters")

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.95),
    )

    def lr_at(step: int) -> float:
        if step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / cfg.warmup_steps
        progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    pad = tokenizer.pad_token_id
    model.train()
    t0, ema = time.time(), None
    queue: list[list[tuple[list[int], list[int]]]] = []
    for step in range(cfg.steps):
        if not queue:  # refill: sort a pool by length, cut into batches, shuffle their order
            pool = sorted((example(rng) for _ in range(cfg.batch_size * cfg.bucket_batches)), key=lambda e: len(e[0]))
            queue = [pool[i : i + cfg.batch_size] for i in range(0, len(pool), cfg.batch_size)]
            rng.shuffle(queue)
        batch = queue.pop()
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((cfg.batch_size, width), pad, dtype=torch.long)
        labels = torch.full((cfg.batch_size, width), -100, dtype=torch.long)
        attn = torch.zeros((cfg.batch_size, width), dtype=torch.long)
        for i, (ids, lab) in enumerate(batch):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            labels[i, : len(lab)] = torch.tensor(lab)
            attn[i, : len(ids)] = 1
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        loss = model(input_ids=input_ids, attention_mask=attn, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if step % 100 == 0 or step == cfg.steps - 1:
            log(f"step {step:5d}  loss {ema:.4f}  lr {lr_at(step):.2e}  {time.time() - t0:6.0f}s")
    model.eval()
    model.save_pretrained(str(out_dir), safe_serialization=True)
    return {"parameters": n_params, "train_seconds": round(time.time() - t0, 1), "final_loss": round(ema, 4)}
