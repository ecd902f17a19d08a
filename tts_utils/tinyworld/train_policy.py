"""Train the tiny policies: LlamaForCausalLM of four sizes (grouped-query attention, as Llama 3) on
correct step-by-step solutions whose steps mix two styles (terse and verbose), loss on the
assistant turn only. Also the judge's base model, which no grid runs as a policy.

    python -m tts_utils.tinyworld.train_policy [--only tiny-policy-s tiny-judge] [--steps-scale 1.0]
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

# name -> shape, steps, peak lr: 11x from the smallest to the largest. The smallest is sized to play
# (greedy 15-35%, the paper's small policies are 26-32% with CoT): a 16k-parameter policy scored 4%,
# and 98% of its right answers came by luck (a wrong step, an answer drawn from 0..99).
POLICIES = {
    "tiny-policy-xs": dict(hidden=48, layers=2, heads=4, inter=112, steps=4000, lr=4e-3),
    "tiny-policy-s": dict(hidden=48, layers=2, heads=4, inter=128, steps=4000, lr=4e-3),
    "tiny-policy-m": dict(hidden=64, layers=4, heads=4, inter=192, steps=4000, lr=3e-3),
    "tiny-policy-l": dict(hidden=112, layers=4, heads=4, inter=304, steps=3600, lr=2e-3),
}
# The base the strongest PRM is fine-tuned from, as Qwen2.5-Math-PRM-72B is from the math-specialised
# Qwen2.5-Math-72B: not a policy of the study, larger than the largest policy and trained on more
# and longer chains (its own draw of problems, weighted to the long levels where the policies fail),
# so that it is stronger at the task than every policy whose samples it will judge.
JUDGE = {"tiny-judge": dict(hidden=128, layers=4, heads=4, inter=352, steps=2600, lr=2e-3)}
JUDGE_LEVEL_WEIGHTS = (2, 2, 2, 3, 3, 2)
JUDGE_SEED = 8
BATCH = 32
N_TRAIN = 90000
# Examples per level 1-5 and the hard length (6): every level teaches the same step, the long ones
# teach carrying it far; the hard length is rare, as competition problems are in real training data.
LEVEL_WEIGHTS = (3, 3, 3, 2, 2, 1)
P_VERBOSE = 0.4  # each step is verbose with this probability (sampling at T = 0.7 keeps ~1/3 verbose)
SEED = 7


def spec_of(name: str) -> dict:
    """The row of a trained model (a policy or the judge's base) in its table of shapes."""
    return {**POLICIES, **JUDGE}[name]


def kv_heads(heads: int) -> int:
    """Grouped-query attention, 2 query heads per key/value head (Llama 3 uses 4; our models have
    2-4 heads): half the KV-cache bytes per token, which is what bounds batched decoding."""
    return max(1, heads // 2)


def policy_config(hidden, layers, heads, inter, tokenizer) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=VOCAB_SIZE, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv_heads(heads), max_position_embeddings=1024,
        rms_norm_eps=1e-5, tie_word_embeddings=True, rope_theta=10000.0,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.convert_tokens_to_ids(END),
        pad_token_id=tokenizer.pad_token_id,
    )


def prompt(tokenizer, question: str) -> str:
    return tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                         add_generation_prompt=True)


def make_examples(tokenizer, n: int = N_TRAIN, seed: int = SEED, weights=LEVEL_WEIGHTS):
    """(ids, loss mask) pairs: prompt (masked) + solution + <|end|> (trained)."""
    rng = random.Random(seed)
    probs = task.train_problems(n, seed=seed, weights=weights)
    prompts = [prompt(tokenizer, task.problem_text(p)) for _, p in probs]
    sols = ["".join(task.solve(p, "mixed", rng, P_VERBOSE)) + END for _, p in probs]
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
    spec = spec or spec_of(name)
    tok = build_tokenizer("tiny")
    if examples is None:
        examples = make_examples(tok, seed=JUDGE_SEED, weights=JUDGE_LEVEL_WEIGHTS) if name in JUDGE else \
            make_examples(tok)
    t0 = time.time()
    model = build_policy(name, spec, tok)
    steps = steps if steps is not None else spec["steps"]
    log(f"{name}: {n_params(model)} params, {steps} steps", logfile)
    curve, tokens = train_causal_lm(model, examples, steps=steps, batch_size=BATCH, lr=spec["lr"],
                                    pad_id=tok.pad_token_id, seed=SEED, logfile=logfile, name=name)
    info = {"name": name, "params": n_params(model), "train_tokens": tokens, "steps": steps,
            "seconds": round(time.time() - t0, 1), "curve": curve, **{k: spec[k] for k in spec if k != "steps"}}
    if save:
        save_model(model, tok, DATA / name)
        RUNS.mkdir(parents=True, exist_ok=True)
        (RUNS / f"train_{name}.json").write_text(json.dumps(info))
    return model, tok, info


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--steps-scale", type=float, default=1.0)
    args = ap.parse_args(argv)
    tok = build_tokenizer("tiny")
    todo = [n for n in POLICIES if not args.only or n in args.only]
    examples = make_examples(tok) if todo else None
    for name in todo:
        spec = POLICIES[name]
        train_policy(name, spec, steps=int(spec["steps"] * args.steps_scale), examples=examples)
    for name, spec in JUDGE.items():
        if not args.only or name in args.only:
            train_policy(name, spec, steps=int(spec["steps"] * args.steps_scale))


if __name__ == "__main__":
    main()
