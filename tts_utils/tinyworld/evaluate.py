"""Measure the tiny policies: greedy accuracy by level on tinymath500 and on tinyhard30, and
pass@k at temperature 0.7 on a per-level sample.

    python -m tts_utils.tinyworld.evaluate [--names tiny-policy-s ...] [--k 16] [--per-level 20]
"""

from __future__ import annotations

import argparse
import json
import time

from transformers import AutoTokenizer, LlamaForCausalLM

from tts_utils.tinyworld import task
from tts_utils.tinyworld.common import DATA, RUNS, generate, log, setup
from tts_utils.tinyworld.train_policy import POLICIES, prompt

MAX_NEW = 600
MAX_NEW_500 = 420


def load_policy(name: str):
    d = DATA / name
    return LlamaForCausalLM.from_pretrained(d).eval(), AutoTokenizer.from_pretrained(d)


def load_sets():
    rd = lambda f: [json.loads(line) for line in (DATA / f).read_text().splitlines() if line.strip()]  # noqa: E731
    return rd("tinymath500.jsonl"), rd("tinyhard30.jsonl")


def _generate(model, tok, probs, k, **kw):
    """k completions per problem, in order; up to MAX_NEW tokens on tinyhard30 and MAX_NEW_500
    on tinymath500 (its longest reference solution is ~350 characters)."""
    out = [None] * (len(probs) * k)
    for hard in (False, True):
        idx = [i * k + j for i, r in enumerate(probs) if (r["level"] == 6) == hard for j in range(k)]
        if not idx:
            continue
        texts = generate(model, tok, [prompt(tok, probs[i // k]["problem"]) for i in idx],
                         max_new_tokens=MAX_NEW if hard else MAX_NEW_500, **kw)
        for i, t in zip(idx, texts, strict=True):
            out[i] = t
    return out


def evaluate_policy(name: str, k: int = 16, per_level: int = 40, logfile: str = "evaluate.log") -> dict:
    setup(0)
    t0 = time.time()
    model, tok = load_policy(name)
    math500, hard = load_sets()
    probs = math500 + hard
    outs = _generate(model, tok, probs, 1, temperature=0.0, seed=0, batch_size=128)
    ok = [task.is_correct(o, r["answer"]) for o, r in zip(outs, probs, strict=True)]
    res: dict = {"name": name, "greedy": {}, "pass@k": {}, "mean@k": {}, "k": k, "per_level": per_level}
    for lv in (1, 2, 3, 4, 5):
        sel = [o for o, r in zip(ok, probs, strict=True) if r["level"] == lv and r["unique_id"].startswith("tiny/")]
        res["greedy"][f"L{lv}"] = sum(sel) / len(sel)
    res["greedy"]["tinymath500"] = sum(ok[: len(math500)]) / len(math500)
    res["greedy"]["tinyhard30"] = sum(ok[len(math500):]) / len(hard)
    # sampling: the first `per_level` problems of each level, and all of tinyhard30
    sample = [r for lv in (1, 2, 3, 4, 5) for r in [x for x in math500 if x["level"] == lv][:per_level]] + hard
    souts = _generate(model, tok, sample, k, temperature=0.7, seed=1, batch_size=256)
    for group in [f"L{lv}" for lv in (1, 2, 3, 4, 5)] + ["tinyhard30"]:
        hits, means = [], []
        for i, r in enumerate(sample):
            g = "tinyhard30" if r["level"] == 6 else f"L{r['level']}"
            if g != group:
                continue
            c = [task.is_correct(o, r["answer"]) for o in souts[i * k:(i + 1) * k]]
            hits.append(any(c))
            means.append(sum(c) / k)
        res["pass@k"][group] = sum(hits) / len(hits)
        res["mean@k"][group] = sum(means) / len(means)
        gsel = [ok[j] for j, r in enumerate(probs) if r["unique_id"] in {x["unique_id"] for x in sample}
                and (("tinyhard30" == group) == (r["level"] == 6)) and (group == "tinyhard30" or
                                                                        f"L{r['level']}" == group)]
        res["greedy_on_sample"] = res.get("greedy_on_sample", {})
        res["greedy_on_sample"][group] = sum(gsel) / len(gsel)
    res["mean_solution_chars"] = sum(len(o) for o in outs) / len(outs)
    res["seconds"] = round(time.time() - t0, 1)
    log(f"{name}: greedy {json.dumps(res['greedy'])} pass@{k} {json.dumps(res['pass@k'])} "
        f"({res['seconds']}s)", logfile)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--names", nargs="*", default=list(POLICIES))
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--per-level", type=int, default=40)
    args = ap.parse_args(argv)
    for n in args.names:
        r = evaluate_policy(n, args.k, args.per_level)
        (RUNS / f"eval_{n}.json").write_text(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()
