"""Train the tiny PRMs, one per input format, on policy samples labelled automatically.

Stages (each writes runs/tinyworld/prm_data/*.jsonl, git-ignored, and can run on its own):

* ``sample``   policy samples (temperature 0.7) on training problems -> steps + exact step labels
               (the checker: a step is "+" while every step so far is right). Also held-out samples
               on tinymath500 problems, for evaluating the PRMs.
* ``rollout``  Math-Shepherd-style Monte-Carlo labels: from each step's prefix, k rollouts by a
               policy; "+" if any reaches the right answer (hard estimation). The last step's label
               is whether its answer is right.
* ``train``    each PRM is initialised from a tiny LM's weights (real PRMs are fine-tuned LMs)
               and trained with the inputs of its format's ``encode`` from tts_utils.models.prm, read at
               the same positions inference reads. Beside the step labels, a training-only head
               on the next-to-last layer learns, at every character of every step, the
               probability that the PRM's starting model gave that character (see
               ``policy_char_probs``). Without it no PRM of this size learned to check a step.
               The weaker PRMs start from a study policy; the strongest from the judge's base,
               which no grid runs and which is stronger at the task than every policy, so its
               target owes nothing to the beliefs of the policies it judges.

    python -m tts_utils.tinyworld.train_prm sample|rollout|train [--names ...]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForTokenClassification,
)

from tts_utils.models.prm import PRM_CLASSES
from tts_utils.models.value_head import Qwen2ValueHeadConfig, Qwen2ValueHeadModel
from tts_utils.tinyworld import task
from tts_utils.tinyworld.common import (
    DATA,
    RUNS,
    generate,
    length_buckets,
    log,
    lr_at,
    n_params,
    save_model,
    setup,
    train_causal_lm,
)
from tts_utils.tinyworld.evaluate import MAX_NEW, load_policy
from tts_utils.tinyworld.tokenizer import MS_TAG, VOCAB_SIZE, build_tokenizer
from tts_utils.tinyworld.train_policy import (
    JUDGE_LEVEL_WEIGHTS,
    P_VERBOSE,
    POLICIES,
    kv_heads,
    make_examples,
    prompt,
    spec_of,
)

PRM_DATA = RUNS / "prm_data"
LOG = "prms.log"
SAMPLE_SEED = 4242
N_SAMPLE_PROBLEMS = 2000      # training problems sampled once by every policy
SAMPLE_LEVEL_WEIGHTS = (2, 2, 2, 2, 2, 1)  # levels 1-5 and the hard length
ROLLOUT_POLICY = "tiny-policy-m"
ROLLOUT_K = 4
N_ROLLOUT_SAMPLES = 2000      # samples (of every policy, equally) that get Monte-Carlo labels
MAX_STEPS = 24

# name -> format, the model it starts from (whose character probabilities are its dense target),
# label source ("exact": the step checker; "mc": Monte-Carlo rollouts), whose samples it learns
# from, how many, the style its training steps are rewritten in ("mixed" keeps them as sampled),
# and why it is as weak or strong as it is: each PRM's quality comes from a cause the paper names,
# never from corrupted labels.
ALL = ("tiny-policy-xs", "tiny-policy-s", "tiny-policy-m", "tiny-policy-l")
# the length twins: everything but the style their training steps are rewritten in
_TWIN = dict(fmt="rlhflow", init="tiny-policy-m", labels="exact", sources=("tiny-policy-s",), max_solutions=None,
             steps=250, lr=1e-3)
PRMS = {
    "tiny-prm-shepherd": dict(
        fmt="math-shepherd", init="tiny-policy-s", labels="mc", sources=ALL, max_solutions=None, style="mixed",
        steps=300, lr=1e-3,
        cause="noisy labels: Monte-Carlo estimation (a step is '+' if one of 4 rollouts by tiny-policy-m "
              "reaches the answer; the rollout policy fails long chains, so correct steps get '-'), on a small "
              "backbone"),
    "tiny-prm-rlhflow-terse": dict(
        _TWIN, style="terse",
        cause="distribution shift: trained only on another policy's samples (tiny-policy-s, whose "
              "mistakes are earlier and coarser than the larger policies'); every training step rewritten terse"),
    "tiny-prm-rlhflow-verbose": dict(
        _TWIN, style="verbose",
        cause="distribution shift, as its terse twin: the same samples and labels, every training step "
              "rewritten verbose (the length twins differ in nothing else)"),
    "tiny-prm-skywork": dict(
        fmt="skywork", init="tiny-policy-m", labels="exact", sources=ALL, max_solutions=2000, style="mixed",
        steps=500, lr=1e-3,
        cause="less data (a quarter of the exact-labelled samples) and a mid-size backbone"),
    "tiny-prm-qwen": dict(
        fmt="qwen-prm", init="tiny-judge", labels="exact", sources=ALL, max_solutions=None,
        style="mixed", steps=1400, lr=1e-3, format_steps=400,
        cause="the strong one, built as the paper builds its strongest: a stronger base than every policy "
              "(tiny-judge, first taught to read solutions in this PRM's input format; its character "
              "probabilities are the dense target), exact step labels on every policy's samples, all the data, "
              "the longest training"),
}
BATCH = 32
# Teaching a base the PRM's input format (``format_steps`` in a PRM's row, see ``base_in_format``):
# right solutions, half in the base's own chat format and half in the PRM's, on problems drawn as
# the judge's base's were, next-token loss on the solutions only.
FORMAT_EXAMPLES = 6000   # of each kind
FORMAT_SEED = 21
FORMAT_LR = 1e-3
AUX_WEIGHT = 1.0  # the auxiliary target's loss beside the step labels' (policy_char_probs)


# ------------------------------------------------------------------------------------- data

def _write(path, recs):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def sample_problems() -> list[dict]:
    """Training problems for PRM data (a seed of their own; never a test problem)."""
    train = task.train_problems(N_SAMPLE_PROBLEMS, seed=SAMPLE_SEED, weights=SAMPLE_LEVEL_WEIGHTS)
    return [{"problem": task.problem_text(p), "answer": str(task.value(p)), "level": lv} for lv, p in train]


def sample_policy(name: str, problems: list[dict], seed: int) -> list[dict]:
    setup(seed)
    model, tok = load_policy(name)
    outs = generate(model, tok, [prompt(tok, r["problem"]) for r in problems], temperature=0.7,
                    max_new_tokens=MAX_NEW[True], seed=seed, batch_size=256)  # the hard set's budget
    recs = []
    for r, text in zip(problems, outs, strict=True):
        steps = task.split_steps(text)
        if not steps or len(steps) > MAX_STEPS or MS_TAG in text:  # the tag would misplace Math-Shepherd's reads
            continue
        recs.append({"problem": r["problem"], "answer": r["answer"], "level": r["level"], "policy": name,
                     "steps": steps, "exact": task.check_solution(r["problem"], steps),
                     "correct": task.is_correct(text, r["answer"])})
    return recs


def stage_sample(names=None):
    train = sample_problems()
    for name in names or list(POLICIES):
        i = list(POLICIES).index(name)  # the seed follows the policy, not the order of the call
        t0 = time.time()
        recs = sample_policy(name, train, SAMPLE_SEED + i)
        _write(PRM_DATA / f"train_{name}.jsonl", recs)
        bad = sum(not all(r["exact"]) for r in recs)
        log(f"sampled {name}: {len(recs)} train ({bad} with a wrong step), {time.time() - t0:.0f}s", LOG)


def rollout_pool() -> list[dict]:
    """The samples that get Monte-Carlo labels: a seeded subset of every policy's training samples,
    an equal share each."""
    pool = []
    for name in ALL:
        recs = _read(PRM_DATA / f"train_{name}.jsonl")
        random.Random(SAMPLE_SEED).shuffle(recs)
        pool += recs[: N_ROLLOUT_SAMPLES // len(ALL)]
    random.Random(SAMPLE_SEED).shuffle(pool)
    return pool


def stage_rollout(part: int = 0, parts: int = 1):
    """Monte-Carlo labels for ``rollout_pool()[part::parts]`` (parts run in parallel processes)."""
    setup(SAMPLE_SEED + part)
    t0 = time.time()
    pool = rollout_pool()[part::parts]
    model, tok = load_policy(ROLLOUT_POLICY)
    prompts, where = [], []
    for i, r in enumerate(pool):
        base = prompt(tok, r["problem"])
        for j in range(len(r["steps"]) - 1):
            for _ in range(ROLLOUT_K):
                prompts.append(base + "".join(r["steps"][: j + 1]))
                where.append((i, j))
    outs = generate(model, tok, prompts, temperature=0.7, max_new_tokens=700, seed=SAMPLE_SEED + 7 + part,
                    batch_size=256)
    hits = {}
    for (i, j), o in zip(where, outs, strict=True):
        hits[(i, j)] = hits.get((i, j), False) or task.is_correct(o, pool[i]["answer"])
    for i, r in enumerate(pool):
        n = len(r["steps"])
        r["mc"] = [hits[(i, j)] for j in range(n - 1)] + [task.is_correct("".join(r["steps"]), r["answer"])]
    _write(PRM_DATA / f"rollout_{part}.jsonl", pool)
    agree = sum(a == b for r in pool for a, b in zip(r["mc"], r["exact"], strict=True))
    total = sum(len(r["steps"]) for r in pool)
    log(f"rollouts part {part}: {len(pool)} samples, {len(prompts)} rollouts, MC labels agree with exact "
        f"on {agree}/{total} steps, {time.time() - t0:.0f}s", LOG)


def training_records(spec: dict) -> list[dict]:
    if spec["labels"] == "mc":
        recs = []
        for p in sorted(PRM_DATA.glob("rollout_*.jsonl")):
            recs += [r for r in _read(p) if r["policy"] in spec["sources"]]
        for r in recs:
            r["labels"] = r["mc"]
    else:
        recs = []
        for name in spec["sources"]:
            recs += _read(PRM_DATA / f"train_{name}.jsonl")
        for r in recs:
            r["labels"] = r["exact"]
    if spec["max_solutions"]:
        random.Random(SAMPLE_SEED).shuffle(recs)
        recs = recs[: spec["max_solutions"]]
    if spec["style"] != "mixed":
        # the same samples (problems, mistakes, labels), every step rewritten in one style: two PRMs
        # trained this way differ only in the style (length) of their training solutions
        for r in recs:
            r["steps"] = [task.restyle(st, spec["style"]) for st in r["steps"]]
    return recs


# ----------------------------------------------------------------------------------- models

def _backbone_kwargs(p: dict) -> dict:
    return dict(vocab_size=VOCAB_SIZE, hidden_size=p["hidden"], intermediate_size=p["inter"],
                num_hidden_layers=p["layers"], num_attention_heads=p["heads"], num_key_value_heads=kv_heads(p["heads"]),
                max_position_embeddings=2048, rms_norm_eps=1e-5, rope_theta=10000.0)


def format_example(prm, question: str, steps: list[str]) -> tuple[list[int], list[int]]:
    """(ids, loss mask) of a solution in ``prm``'s input format: trained from the solution's first
    character to the end (its separators and closing tokens included), the question not."""
    ids, pos = prm.encode(question, steps)
    start = pos[0] - len(steps[0].strip())
    return ids, [0] * start + [1] * (len(ids) - start)


def base_in_format(spec: dict) -> Path:
    """The weights a PRM starts from: its base's (data/tinyworld/<init>), or, for a row with
    ``format_steps``, the base after that many steps of next-token training on right solutions in
    the PRM's input format and (as many) in its own, trained anew on every call (its base may have
    changed) and saved with its record (format_train.json) under runs/tinyworld/.

    Why: a base learns its arithmetic in its own chat format, and in another layout (a system
    prompt, steps ended by a separator token) its predictions fall apart: tiny-judge's lowest
    character probability so far picks right solutions among a policy's samples in its own format
    (Best-of-N rises with N) and anti-selects the same solutions in the Qwen-PRM format. The real
    PRMs' bases had read such layouts before; this gives the tiny base the same."""
    if not spec.get("format_steps"):
        return DATA / spec["init"]
    out = RUNS / f"{spec['init']}-in-{spec['fmt']}"
    setup(FORMAT_SEED)
    tiny, fmt_tok = build_tokenizer("tiny"), build_tokenizer(spec["fmt"])
    own = make_examples(tiny, n=FORMAT_EXAMPLES, seed=FORMAT_SEED + 10, weights=JUDGE_LEVEL_WEIGHTS)
    rng = random.Random(FORMAT_SEED + 11)
    problems = task.train_problems(FORMAT_EXAMPLES, seed=FORMAT_SEED + 12, weights=JUDGE_LEVEL_WEIGHTS)
    model = LlamaForCausalLM.from_pretrained(DATA / spec["init"])
    prm = PRM_CLASSES[spec["fmt"]](model, fmt_tok)  # the format's own encoder (it also picks the attention kernel)
    in_format = [format_example(prm, task.problem_text(p), task.solve(p, "mixed", rng, P_VERBOSE))
                 for _, p in problems]
    t0 = time.time()
    curve, tokens = train_causal_lm(model, own + in_format, steps=spec["format_steps"], batch_size=BATCH,
                                    lr=FORMAT_LR, pad_id=tiny.pad_token_id, seed=FORMAT_SEED, logfile=LOG,
                                    name=out.name)
    save_model(model, tiny, out)
    (out / "format_train.json").write_text(json.dumps({"steps": spec["format_steps"], "tokens": tokens,
                                                       "seconds": round(time.time() - t0, 1), "curve": curve}))
    return out


def build_prm_model(spec: dict, tok, start: Path):
    """The PRM's model in its format's architecture, with the weights of ``start`` (``base_in_format``)."""
    p = spec_of(spec["init"])
    kw = _backbone_kwargs(p)
    ids = dict(bos_token_id=tok.bos_token_id if tok.bos_token_id is not None else tok.pad_token_id,
               eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    fmt = spec["fmt"]
    if fmt == "math-shepherd":
        model = MistralForCausalLM(MistralConfig(**kw, **ids, sliding_window=None, tie_word_embeddings=True))
    elif fmt == "rlhflow":
        model = LlamaForCausalLM(LlamaConfig(**kw, **ids, tie_word_embeddings=True))
    elif fmt == "skywork":
        model = Qwen2ValueHeadModel(Qwen2ValueHeadConfig(**kw, **ids, tie_word_embeddings=False))
    elif fmt == "qwen-prm":
        model = Qwen2ForTokenClassification(Qwen2Config(**kw, **ids, num_labels=2, tie_word_embeddings=False))
    else:
        raise ValueError(fmt)
    policy = LlamaForCausalLM.from_pretrained(start)  # same shapes; Qwen2's q/k/v biases stay at zero
    state = {k: v for k, v in policy.state_dict().items() if k.startswith("model.") or
             (k == "lm_head.weight" and fmt in ("math-shepherd", "rlhflow"))}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected, unexpected
    return model


def _read_out(model, fmt: str, prm, ids, att, rows, cols):
    """Training outputs at the read positions (logits over (-, +) or over the two classes, or the
    value-head logit, each as the format's model computes it), and the hidden states after the
    next-to-last layer (what the auxiliary head reads)."""
    base = model.base_model(input_ids=ids, attention_mask=att, output_hidden_states=True)
    last = base.last_hidden_state
    if fmt in ("math-shepherd", "rlhflow"):
        out = model.get_output_embeddings()(last[rows, cols])[:, [prm.bad_id, prm.good_id]]  # class 1 = "+"
    elif fmt == "skywork":
        out = model.v_head(last)[rows, cols]
    elif fmt == "qwen-prm":
        out = model.score(model.dropout(last))[rows, cols]
    else:
        raise ValueError(fmt)
    return out, base.hidden_states[-2]


# ------------------------------------------------------------------ the auxiliary target

def policy_char_probs(policy: str | Path, recs: list[dict], batch_size: int = 64) -> list[list[list[float]]]:
    """For every record, step and character of the (stripped) step: the probability that the
    policy ``policy`` gives that character after the question and the solution so far, in
    the policy's own chat format (steps joined by "\n\n", as it writes them).

    Why: a wrong step is one whose characters its author, a policy of the same family, finds
    unlikely (tiny-policy-l's lowest character probability in a step separates first errors from
    right steps with AUROC 0.95), but a PRM fine-tuned on step labels alone never learned that
    check at these sizes: it learned the step's position instead (AUROC 0.79, as position alone).
    Predicting these probabilities at every character, from its next-to-last layer, gives the
    PRM a dense target that forms the check where its last layer can read it. The target needs no
    label: it is the PRM's starting policy's own prediction, so a PRM started from a weaker policy
    gets a weaker target."""
    tok = build_tokenizer("tiny")
    model = LlamaForCausalLM.from_pretrained(DATA / policy).eval()  # a name under data/tinyworld, or a path
    out = []
    with torch.no_grad():
        for b in range(0, len(recs), batch_size):
            chunk = recs[b: b + batch_size]
            seqs, starts = [], []
            for r in chunk:
                ids = tok(prompt(tok, r["problem"]), add_special_tokens=False)["input_ids"]
                at = []
                for st in r["steps"]:
                    at.append(len(ids) + len(st) - len(st.lstrip()))
                    ids += tok(st, add_special_tokens=False)["input_ids"]
                seqs.append(ids)
                starts.append(at)
            ids = torch.full((len(seqs), max(map(len, seqs))), tok.pad_token_id, dtype=torch.long)
            for i, s in enumerate(seqs):
                ids[i, : len(s)] = torch.tensor(s)  # right padding: no real position sees it
            logp = model(input_ids=ids).logits.float().log_softmax(-1)
            for i, r in enumerate(chunk):
                row = []
                for st, a in zip(r["steps"], starts[i], strict=True):
                    n = len(st.strip())
                    idx = torch.arange(a, a + n)
                    row.append(logp[i, idx - 1, ids[i, idx]].exp().tolist())
                out.append(row)
    return out


def step_text_positions(tok, ids: list[int], read_positions: list[int], steps: list[str]) -> list[list[int]]:
    """Where each (stripped) step's characters sit in a format's encoded input: the last place its
    tokens appear between the previous step's read position and its own. The tiny tokenizer has a
    token per character, so a step is as many tokens as characters; a format may write a step's
    inner newlines as spaces (Skywork's), which keeps every character in its place."""
    out, lo = [], 0
    for st, hi in zip(steps, read_positions, strict=True):
        texts = {st.strip(), st.strip().replace("\n", " ")}
        ts = [tok(x, add_special_tokens=False)["input_ids"] for x in texts]
        if any(len(t) != len(st.strip()) for t in ts):
            raise ValueError("the auxiliary target needs one token per character")
        n = len(st.strip())
        start = next((a for a in range(hi - n, lo - 1, -1) if ids[a: a + n] in ts), None)
        if start is None:
            raise ValueError(f"step {st!r} not found in its encoded input")
        out.append(list(range(start, start + n)))
        lo = hi + 1
    return out


def encode_record(prm, fmt: str, r: dict):
    steps = [s for s in r["steps"]]
    if fmt == "rlhflow":  # RLHFlow trains on the gold label as each assistant turn
        return prm.encode(r["problem"], steps, labels=[bool(x) for x in r["labels"]])
    return prm.encode(r["problem"], steps)


def train_one(name: str, spec: dict | None = None, steps: int | None = None, save: bool = True):
    spec = spec or PRMS[name]
    setup(11)
    t0 = time.time()
    tok = build_tokenizer(spec["fmt"])
    start = base_in_format(spec)  # once: a format lesson trains
    model = build_prm_model(spec, tok, start)
    prm = PRM_CLASSES[spec["fmt"]](model, tok, name=name)
    model.train()
    recs = training_records(spec)
    char_probs = policy_char_probs(start, recs)
    aux_head = torch.nn.Linear(model.config.hidden_size, 1)  # training only: never saved
    data = []
    for r, probs in zip(recs, char_probs, strict=True):
        ids, pos = encode_record(prm, spec["fmt"], r)
        where = step_text_positions(tok, ids, pos, r["steps"])
        data.append((ids, pos, [int(x) for x in r["labels"]], [c for w in where for c in w],
                     [p for ps in probs for p in ps]))
    pos_frac = sum(sum(d[2]) for d in data) / max(1, sum(len(d[2]) for d in data))
    class_w = torch.tensor([0.5 / max(1 - pos_frac, 1e-3), 0.5 / max(pos_frac, 1e-3)])
    steps = steps if steps is not None else spec["steps"]
    log(f"{name}: {n_params(model)} params, {len(data)} solutions ({pos_frac:.2f} of steps '+'), "
        f"{steps} steps", LOG)
    rng = random.Random(11)
    params = list(model.parameters()) + list(aux_head.parameters())
    opt = torch.optim.AdamW(params, lr=spec["lr"], betas=(0.9, 0.98), weight_decay=0.01)
    batches, curve, tokens, run, run_aux = [], [], 0, 0.0, 0.0
    for step in range(steps):
        if not batches:
            batches = length_buckets([len(d[0]) for d in data], BATCH, rng)
        idx = batches.pop()
        width = max(len(data[i][0]) for i in idx)
        ids = torch.full((len(idx), width), tok.pad_token_id, dtype=torch.long)
        att = torch.zeros((len(idx), width), dtype=torch.long)
        rows, cols, ys, aux_rows, aux_cols, aux_ys = [], [], [], [], [], []
        for b, i in enumerate(idx):
            s, p, y, ac, ay = data[i]
            ids[b, : len(s)] = torch.tensor(s)
            att[b, : len(s)] = 1
            rows += [b] * len(p)
            cols += p
            ys += y
            aux_rows += [b] * len(ac)
            aux_cols += ac
            aux_ys += ay
        rows_t, cols_t, y_t = torch.tensor(rows), torch.tensor(cols), torch.tensor(ys)
        out, hidden = _read_out(model, spec["fmt"], prm, ids, att, rows_t, cols_t)
        aux_logits = aux_head(hidden[torch.tensor(aux_rows), torch.tensor(aux_cols)]).squeeze(-1)
        aux_loss = torch.nn.functional.binary_cross_entropy_with_logits(aux_logits.float(), torch.tensor(aux_ys))
        # Class-balanced loss: most steps of these weak policies are wrong (pos_frac is about
        # 0.05-0.10), and an unweighted loss lets a PRM score every step "wrong" and stop there.
        if spec["fmt"] == "skywork":
            label_loss = torch.nn.functional.binary_cross_entropy_with_logits(out.float(), y_t.float(),
                                                                              pos_weight=class_w[1] / class_w[0])
        else:
            label_loss = torch.nn.functional.cross_entropy(out.float(), y_t, weight=class_w)
        loss = label_loss + AUX_WEIGHT * aux_loss
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, spec["lr"], warmup=30)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        tokens += int(att.sum())
        run += float(label_loss.detach())
        run_aux += float(aux_loss.detach())
        if (step + 1) % 25 == 0 or step + 1 == steps:
            k = (step % 25) + 1
            curve.append({"step": step + 1, "loss": round(run / k, 5), "aux_loss": round(run_aux / k, 5),
                          "tokens": tokens})
            run = run_aux = 0.0
            if (step + 1) % 100 == 0 or step + 1 == steps:
                log(f"{name} step {step + 1}/{steps} loss {curve[-1]['loss']:.4f} aux {curve[-1]['aux_loss']:.4f} "
                    f"{tokens / (time.time() - t0):.0f} tok/s", LOG)
    model.eval()
    if save:
        save_model(model, tok, DATA / name)
    lesson = start / "format_train.json"  # the base's lesson in this format, if it had one
    info = {"name": name, "params": n_params(model), "train_tokens": tokens, "steps": steps, "curve": curve,
            "n_solutions": len(data), "frac_plus": round(pos_frac, 4), "seconds": round(time.time() - t0, 1),
            "format_lesson": json.loads(lesson.read_text()) if lesson.exists() else None,
            "sources": list(spec["sources"]),
            "aux_target": f"{spec['init']}'s probability of every step character (weight {AUX_WEIGHT})",
            **{k: spec[k] for k in ("fmt", "init", "labels", "style", "cause")}}
    (RUNS / f"train_{name}.json").write_text(json.dumps(info))
    return model, tok, info


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("stage", choices=["sample", "rollout", "train"])
    ap.add_argument("--names", nargs="*")
    ap.add_argument("--part", type=int, default=0)
    ap.add_argument("--parts", type=int, default=1)
    args = ap.parse_args(argv)
    if args.stage == "sample":
        stage_sample(args.names)
    elif args.stage == "rollout":
        stage_rollout(args.part, args.parts)
    else:
        for n in args.names or list(PRMS):
            train_one(n)


if __name__ == "__main__":
    main()
