"""Shared pieces of the tiny world's trainers: paths, determinism, a small LM training loop,
batched generation, and saving a model directory the way from_pretrained reads it."""

from __future__ import annotations

import json
import math
import os
import random
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "tinyworld"
RUNS = ROOT / "runs" / "tinyworld"
# One thread per process, two processes in parallel: on a shared 2-core machine this measured ~4x
# faster than one process with two threads (whose threads stall each other under contention), and
# a single thread makes every run bit-reproducible.
THREADS = int(os.environ.get("TINYWORLD_THREADS", "1"))


def setup(seed: int = 0) -> None:
    torch.set_num_threads(THREADS)
    torch.manual_seed(seed)
    random.seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def log(msg: str, file: str | None = None) -> None:
    line = f"[{time.strftime('%H:%M:%S')}] {msg}"
    print(line, flush=True)
    if file:
        RUNS.mkdir(parents=True, exist_ok=True)
        with open(RUNS / file, "a") as f:
            f.write(line + "\n")


def lr_at(step: int, total: int, peak: float, warmup: int = 100, floor: float = 0.1) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


def pad_batch(seqs: list[list[int]], masks: list[list[int]], pad_id: int):
    """Right-pad token lists; returns input_ids, attention_mask, labels (-100 where masked)."""
    L = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), L), pad_id, dtype=torch.long)
    att = torch.zeros((len(seqs), L), dtype=torch.long)
    lab = torch.full((len(seqs), L), -100, dtype=torch.long)
    for i, (s, m) in enumerate(zip(seqs, masks, strict=True)):
        ids[i, : len(s)] = torch.tensor(s)
        att[i, : len(s)] = 1
        lab[i, : len(s)] = torch.tensor([t if k else -100 for t, k in zip(s, m, strict=True)])
    return ids, att, lab


def length_buckets(lengths: list[int], batch_size: int, rng: random.Random, chunk: int = 64) -> list[list[int]]:
    """One epoch of batches of similar lengths (less padding): shuffle, sort within chunks of
    ``chunk`` batches, cut into batches, shuffle the batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    out = []
    for c in range(0, len(order), batch_size * chunk):
        part = sorted(order[c: c + batch_size * chunk], key=lambda i: lengths[i])
        out += [part[b: b + batch_size] for b in range(0, len(part), batch_size)]
    rng.shuffle(out)
    return out


def train_causal_lm(model, examples, *, steps: int, batch_size: int, lr: float, pad_id: int, seed: int,
                    logfile: str | None = None, name: str = "", curve_every: int = 50):
    """Next-token training on (token ids, loss mask) examples; returns (curve, tokens_seen)."""
    rng = random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)
    model.train()
    curve, tokens, run_loss, t0 = [], 0, 0.0, time.time()
    batches: list[list[int]] = []
    for step in range(steps):
        if not batches:
            batches = length_buckets([len(e[0]) for e in examples], batch_size, rng)
        idx = batches.pop()
        ids, att, lab = pad_batch([examples[i][0] for i in idx], [examples[i][1] for i in idx], pad_id)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, lr)
        out = model(input_ids=ids, attention_mask=att, labels=lab)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tokens += int(att.sum())
        run_loss += float(out.loss.detach())
        if (step + 1) % curve_every == 0 or step + 1 == steps:
            k = (step % curve_every) + 1
            curve.append({"step": step + 1, "loss": round(run_loss / k, 5), "tokens": tokens})
            run_loss = 0.0
            if (step + 1) % (curve_every * 4) == 0 or step + 1 == steps:
                el = time.time() - t0
                log(f"{name} step {step + 1}/{steps} loss {curve[-1]['loss']:.4f} "
                    f"{tokens / el:.0f} tok/s {el:.0f}s", logfile)
    model.eval()
    return curve, tokens


def generate(model, tokenizer, prompts: list[str], *, temperature: float = 0.0, max_new_tokens: int = 400,
             seed: int = 0, batch_size: int = 128) -> list[str]:
    """Complete each prompt (already rendered) to end of turn; returns the continuations' text.

    Runs the study's own decoder (tts_utils.models.policy.TransformersPolicy): about 17x faster here than
    ``model.generate``, which keeps finished rows in the batch; row i is seeded ``seed * 10**6 + i``,
    so its text does not depend on the batch it ran in."""
    from tts_utils.models.policy import SamplingParams, TransformersPolicy

    policy = TransformersPolicy(model, tokenizer, "tiny", batch_size=batch_size)
    params = SamplingParams(temperature=temperature, top_p=1.0, max_tokens=max_new_tokens, stop=None)
    return [g.text for g in policy.generate(prompts, params, [seed * 10**6 + i for i in range(len(prompts))])]


def save_model(model, tokenizer, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    for p in out_dir.iterdir():
        os.chmod(p, 0o644)


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1) + "\n")
    os.chmod(path, 0o644)
