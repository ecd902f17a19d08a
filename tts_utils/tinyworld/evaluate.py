"""Measure the tiny policies: greedy accuracy by level on tinymath500 and tinyhard30, and k = 64
samples at temperature 0.7 of a held-out per-level sample (pass@k, the share of right answers that
came by luck, the style of the steps); the judge's base, greedy only. The samples are kept
(runs/tinyworld/samples_<policy>.jsonl): the PRM evaluation scores exactly these, which are what
Best-of-N selects from.

    python -m tts_utils.tinyworld.evaluate [--names tiny-policy-s ...] [--k 64] [--per-level 20]
"""

from __future__ import annotations

import argparse
import json
import time

from transformers import LlamaForCausalLM

from tts_utils.analysis import pass_at_k
from tts_utils.models.catalog import load_tokenizer
from tts_utils.tinyworld import task
from tts_utils.tinyworld.common import DATA, RUNS, generate, log, setup
from tts_utils.tinyworld.train_policy import JUDGE, POLICIES, prompt

# Longest reference solutions: ~450 characters on level 5, ~550 on tinyhard30 (half the steps
# verbose); an all-verbose solution is ~1.3x that.
MAX_NEW = {False: 600, True: 800}
K = 64
PER_LEVEL = 20
PASS_KS = (1, 4, 16, 64)
GROUPS = [f"L{lv}" for lv in (1, 2, 3, 4, 5)] + ["tinyhard30"]


def load_policy(name: str):
    d = DATA / name
    return LlamaForCausalLM.from_pretrained(d).eval(), load_tokenizer(str(d))


def load_sets():
    rd = lambda f: [json.loads(line) for line in (DATA / f).read_text().splitlines() if line.strip()]  # noqa: E731
    return rd("tinymath500.jsonl"), rd("tinyhard30.jsonl")


def group_of(r: dict) -> str:
    return "tinyhard30" if r["level"] == 6 else f"L{r['level']}"


def sample_set(per_level: int = PER_LEVEL) -> list[dict]:
    """The held-out problems that get k samples: the first ``per_level`` of each level of
    tinymath500, and all of tinyhard30."""
    math500, hard = load_sets()
    return [r for lv in (1, 2, 3, 4, 5) for r in [x for x in math500 if x["level"] == lv][:per_level]] + hard


def _generate(model, tok, probs, k, **kw):
    """k completions per problem, in order (problem i's are at i*k .. i*k+k-1)."""
    out = [None] * (len(probs) * k)
    for hard in (False, True):
        idx = [i * k + j for i, r in enumerate(probs) if (r["level"] == 6) == hard for j in range(k)]
        if not idx:
            continue
        texts = generate(model, tok, [prompt(tok, probs[i // k]["problem"]) for i in idx],
                         max_new_tokens=MAX_NEW[hard], **kw)
        for i, t in zip(idx, texts, strict=True):
            out[i] = t
    return out


def evaluate_policy(name: str, k: int = K, per_level: int = PER_LEVEL, logfile: str = "evaluate.log") -> dict:
    setup(0)
    t0 = time.time()
    model, tok = load_policy(name)
    math500, hard = load_sets()
    probs = math500 + hard
    outs = _generate(model, tok, probs, 1, temperature=0.0, seed=0, batch_size=128)
    ok = {r["unique_id"]: task.is_correct(o, r["answer"]) for o, r in zip(outs, probs, strict=True)}
    res: dict = {"name": name, "k": k, "per_level": per_level, "greedy": {}, "greedy_on_sample": {},
                 "pass@k": {f"pass@{j}": {} for j in PASS_KS if j <= k}}
    for g in GROUPS:
        sel = [ok[r["unique_id"]] for r in probs if group_of(r) == g]
        res["greedy"][g] = sum(sel) / len(sel)
    res["greedy"]["tinymath500"] = sum(ok[r["unique_id"]] for r in math500) / len(math500)
    if not k:  # greedy only (the judge's base: how strong it is at the task)
        res["seconds"] = round(time.time() - t0, 1)
        log(f"{name}: greedy {json.dumps(res['greedy'])} ({res['seconds']}s)", logfile)
        return res
    sample = sample_set(per_level)
    souts = _generate(model, tok, sample, k, temperature=0.7, seed=1, batch_size=256)
    recs = []
    for i, r in enumerate(sample):
        texts = souts[i * k:(i + 1) * k]
        recs.append({"unique_id": r["unique_id"], "level": r["level"], "problem": r["problem"],
                     "answer": r["answer"], "texts": texts,
                     "correct": [task.is_correct(t, r["answer"]) for t in texts]})
    (RUNS / f"samples_{name}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in recs))
    for g in GROUPS + ["tinymath500"]:
        sel = [x for x in recs if (g == "tinymath500" and x["level"] <= 5) or group_of(x) == g]
        for j in [j for j in PASS_KS if j <= k]:
            res["pass@k"][f"pass@{j}"][g] = round(sum(pass_at_k(k, sum(x["correct"]), j) for x in sel) / len(sel), 4)
        res["greedy_on_sample"][g] = sum(ok[x["unique_id"]] for x in sel) / len(sel)
    # a right answer by luck: some step is wrong (an answer drawn from 0..99 is right 1 time in 100)
    right = [(x["problem"], t) for x in recs if x["level"] <= 5 for t, c in zip(x["texts"], x["correct"], strict=True)
             if c]
    lucky = sum(task.first_error(q, task.split_steps(t)) >= 0 for q, t in right)
    res["lucky"] = {"right_samples": len(right), "lucky_share": round(lucky / max(1, len(right)), 4)}
    steps = [task.step_style(s) for x in recs if x["level"] <= 5 for t in x["texts"] for s in task.split_steps(t)]
    res["verbose_step_fraction"] = round(sum(s == "verbose" for s in steps) / max(1, len(steps)), 4)
    res["mean_solution_chars"] = {"greedy": round(sum(len(o) for o in outs) / len(outs), 1),
                                  "sampled": round(sum(len(t) for x in recs for t in x["texts"]) / (len(recs) * k), 1)}
    res["seconds"] = round(time.time() - t0, 1)
    log(f"{name}: greedy {json.dumps(res['greedy'])} pass@{k} {json.dumps(res['pass@k'][f'pass@{k}'])} "
        f"verbose steps {res['verbose_step_fraction']} ({res['seconds']}s)", logfile)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--names", nargs="*", default=[*POLICIES, *JUDGE])
    ap.add_argument("--k", type=int, default=K)
    ap.add_argument("--per-level", type=int, default=PER_LEVEL)
    args = ap.parse_args(argv)
    for n in args.names:
        r = evaluate_policy(n, 0 if n in JUDGE else args.k, args.per_level)
        (RUNS / f"eval_{n}.json").write_text(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()
