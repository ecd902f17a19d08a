"""Train the tiny policies: LlamaForCausalLM of four sizes on correct step-by-step solutions in two
styles (terse and verbose), loss on the assistant turn only.

    python -m tts_utils.tinyworld.train_policy [--only policy-s] [--steps-scale 1.0]
"""

from __future__ import annotations

import argparse
import json
import random
import time

from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

from tts_utils.tinyworld import task
from tts_utils.tinyworld.common import DATA, RUNS, log, n_params, save_model, setup, train_causal_lm
from tts_utils.tinyworld.tokenizer import END, VOCAB_SIZE, build_tokenizer

# name -> (hidden, layers, heads, intermediate, steps, lr[, steps2]). Steps are calibrated so that the
# whole rebuild fits the CPU budget and the models stay undertrained (TTS needs room to improve); the
# two small ones are cheap per step, so they get more steps (each build lane, l+xs and s+m, ~30 min).
# steps2: a second phase (fresh optimizer, a new warmup+cosine cycle at half the peak lr, the next
# epochs of the same data under seed SEED + 1) run after the first; the build runs both phases.
POLICIES = {
    "tiny-policy-xs": dict(hidden=32, layers=2, heads=2, inter=64, steps=7500, lr=5e-3),
    "tiny-policy-s": dict(hidden=48, layers=3, heads=3, inter=128, steps=7500, lr=4e-3),
    "tiny-policy-m": dict(hidden=80, layers=4, heads=4, inter=224, steps=2500, lr=3e-3, steps2=1500),
    "tiny-policy-l": dict(hidden=128, layers=4, heads=4, inter=352, steps=2500, lr=2.5e-3, steps2=1500),
}
BATCH = 32
N_TRAIN = 90000
LEVEL_WEIGHTS = (4, 3, 2, 1, 1)  # easy levels dominate: the copy-and-compute skill is learnt there
P_VERBOSE = 0.35
P_RANDOM_ORDER = 0.2
SEED = 7


def policy_config(hidden, layers, heads, inter, tokenizer) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=VOCAB_SIZE, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=1024,
        rms_norm_eps=1e-5, tie_word_embeddings=True, rope_theta=10000.0,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.convert_tokens_to_ids(END),
        pad_token_id=tokenizer.pad_token_id,
    )


def prompt(tokenizer, question: str) -> str:
    return tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                         add_generation_prompt=True)


def make_examples(tokenizer, n: int = N_TRAIN, seed: int = SEED, styles=("terse", "verbose")):
    """(ids, loss mask) pairs: prompt (masked) + solution + <|end|> (trained)."""
    rng = random.Random(seed)
    probs = task.train_problems(n, seed=seed, weights=LEVEL_WEIGHTS)
    prompts = [prompt(tokenizer, task.problem_text(t)) for _, t in probs]
    sols = []
    for _, t in probs:
        style = styles[-1] if len(styles) > 1 and rng.random() < P_VERBOSE else styles[0]
        sols.append("".join(task.solve(t, style, rng if rng.random() < P_RANDOM_ORDER else None)) + END)
    P = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    S = tokenizer(sols, add_special_tokens=False)["input_ids"]
    return [(p + s, [0] * len(p) + [1] * len(s)) for p, s in zip(P, S, strict=True)]


def build_policy(name: str, spec: dict, tokenizer, seed: int = SEED):
    setup(seed)
    model = LlamaForCausalLM(policy_config(spec["hidden"], spec["layers"], spec["heads"], spec["inter"],
                                           tokenizer))
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=[tokenizer.convert_tokens_to_ids(END),
                                                            tokenizer.convert_tokens_to_ids("</s>")],
        pad_token_id=tokenizer.pad_token_id, do_sample=True, temperature=0.7, top_p=1.0, top_k=0)
    return model


def train_policy(name: str, spec: dict | None = None, *, steps: int | None = None, examples=None,
                 save: bool = True, logfile: str = "policies.log"):
    spec = spec or POLICIES[name]
    tok = build_tokenizer("tiny")
    examples = examples if examples is not None else make_examples(tok)
    t0 = time.time()
    model = build_policy(name, spec, tok)
    steps = steps if steps is not None else spec["steps"]
    log(f"{name}: {n_params(model)} params, {steps} steps", logfile)
    curve, tokens = train_causal_lm(model, examples, steps=steps, batch_size=BATCH, lr=spec["lr"],
                                    pad_id=tok.pad_token_id, seed=SEED, logfile=logfile, name=name)
    info = {"name": name, "params": n_params(model), "train_tokens": tokens, "steps": steps,
            "seconds": round(time.time() - t0, 1), "curve": curve, **{k: spec[k] for k in spec if k != "steps"}}
    if spec.get("steps2") and steps == spec["steps"]:
        model, info = _phase2(model, tok, examples, spec, info, logfile)
    if save:
        save_model(model, tok, DATA / name)
        RUNS.mkdir(parents=True, exist_ok=True)
        (RUNS / f"train_{name}.json").write_text(json.dumps(info))
    return model, tok, info


def _phase2(model, tok, examples, spec, info, logfile):
    t0 = time.time()
    model.train()
    log(f"{info['name']}: phase 2, {spec['steps2']} steps", logfile)
    curve, tokens = train_causal_lm(model, examples, steps=spec["steps2"], batch_size=BATCH, lr=spec["lr"] / 2,
                                    pad_id=tok.pad_token_id, seed=SEED + 1, logfile=logfile, name=info["name"])
    info = {**info, "train_tokens": info["train_tokens"] + tokens, "steps": info["steps"] + spec["steps2"],
            "seconds": round(info["seconds"] + time.time() - t0, 1),
            "curve": info["curve"] + [{**c, "step": c["step"] + info["steps"], "tokens": c["tokens"] + info["train_tokens"]}
                                      for c in curve]}
    return model, info


def continue_policy(name: str, logfile: str = "policies.log"):
    """Run only phase 2 on the saved phase-1 weights (what the build's single run does in one go;
    bit-identical, since the phase-1 weights round-trip exactly through safetensors)."""
    spec = POLICIES[name]
    tok = build_tokenizer("tiny")
    examples = make_examples(tok)
    setup(SEED)
    model = LlamaForCausalLM.from_pretrained(DATA / name)
    info = json.loads((RUNS / f"train_{name}.json").read_text())
    assert info["steps"] == spec["steps"], "phase 2 already done"
    model, info = _phase2(model, tok, examples, spec, info, logfile)
    save_model(model, tok, DATA / name)
    (RUNS / f"train_{name}.json").write_text(json.dumps(info))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--steps-scale", type=float, default=1.0)
    ap.add_argument("--continue", dest="cont", action="store_true", help="phase 2 only, on saved weights")
    args = ap.parse_args(argv)
    if args.cont:
        for name in args.only:
            continue_policy(name)
        return
    tok = build_tokenizer("tiny")
    examples = make_examples(tok)
    for name, spec in POLICIES.items():
        if args.only and name not in args.only:
            continue
        train_policy(name, spec, steps=int(spec["steps"] * args.steps_scale), examples=examples)


if __name__ == "__main__":
    main()
