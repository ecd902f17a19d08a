"""Evaluate the tiny PRMs on held-out samples of every policy: first-error F1 (ProcessBench's
measure), Best-of-N curves, and the length twins' taste. Writes runs/tinyworld/eval_<prm>.json,
which the report reads.

    python -m tts_utils.tinyworld.prm_eval [--names tiny-prm-qwen ...]
"""

from __future__ import annotations

import argparse
import json
import math
import time

from tts_utils.tinyworld import task
from tts_utils.tinyworld.common import (
    DATA,
    RUNS,
    log,
    setup,
)
from tts_utils.tinyworld.tokenizer import MS_TAG
from tts_utils.tinyworld.train_policy import POLICIES
from tts_utils.tinyworld.train_prm import LOG, MAX_STEPS, PRMS, _read


def _registry_names():
    from tts_utils.models.catalog import registry

    return set(registry())


PRM_EVAL_PER_LEVEL = 12
# Solutions per forward when scoring the held-out samples. Small: the PRMs score in float64, and a
# batch of 64 long RLHFlow inputs overflows the core's caches (batch 4 measured 1.4-1.6x faster,
# with the same rewards).
EVAL_BATCH = 4


def heldout_records() -> list[dict]:
    """What Best-of-N selects from: every policy's k = 64 samples at T = 0.7 of held-out tinymath500
    problems (the first PRM_EVAL_PER_LEVEL a level of those tts_utils.tinyworld.evaluate sampled),
    one record per sample with its steps and exact labels."""
    recs = []
    for name in POLICIES:
        seen: dict[int, int] = {}
        for x in _read(RUNS / f"samples_{name}.jsonl"):
            seen[x["level"]] = seen.get(x["level"], 0) + 1
            if x["level"] > 5 or seen[x["level"]] > PRM_EVAL_PER_LEVEL:
                continue
            for j, text in enumerate(x["texts"]):
                if MS_TAG in text:  # never written by a trained policy (no training text has it)
                    continue
                steps = task.split_steps(text)[:MAX_STEPS] or [text]
                recs.append({"problem": x["problem"], "answer": x["answer"], "level": x["level"], "policy": name,
                             "unique_id": x["unique_id"], "sample": j, "steps": steps,
                             "exact": task.check_solution(x["problem"], steps), "correct": x["correct"][j]})
    return recs


def processbench_f1(recs: list[dict], rewards: list[list[float]], threshold: float = 0.5) -> dict:
    """ProcessBench's measure: predicted first error = first step scored below ``threshold``
    (-1 if none); accuracy on erroneous and on correct solutions, and their harmonic mean."""
    err_hits, err_n, ok_hits, ok_n, step_hits, step_n = 0, 0, 0, 0, 0, 0
    for r, s in zip(recs, rewards, strict=True):
        truth = task.first_error(r["problem"], r["steps"])
        if truth >= len(r["steps"]):  # no answer at all: the last step is where it goes wrong
            truth = len(r["steps"]) - 1
        pred = next((i for i, x in enumerate(s) if x < threshold), -1)
        if truth == -1:
            ok_n += 1
            ok_hits += pred == -1
        else:
            err_n += 1
            err_hits += pred == truth
        step_n += len(r["exact"])
        step_hits += sum((x >= threshold) == y for x, y in zip(s, r["exact"], strict=True))
    acc_err = err_hits / max(1, err_n)
    acc_ok = ok_hits / max(1, ok_n)
    f1 = 0.0 if acc_err + acc_ok == 0 else 2 * acc_err * acc_ok / (acc_err + acc_ok)
    return {"f1": round(f1, 4), "acc_erroneous": round(acc_err, 4), "acc_correct": round(acc_ok, 4),
            "n_erroneous": err_n, "n_correct": ok_n, "step_accuracy": round(step_hits / max(1, step_n), 4)}


BON_NS = (1, 4, 16, 64)


def best_of_n_curves(recs: list[dict], rewards: list[list[float]]) -> dict:
    """Best-of-N accuracy with PRM-Max (the answer of the best-scored sample), per policy and N,
    aggregating step scores by their minimum and by the last one: each problem's 64 samples are cut
    into 64/N disjoint groups of N and the accuracy is averaged over groups and problems. As in the
    study's voting (``voting.select_index``), only samples with an answer compete: a group where
    none has one scores 0.

    Also ``majority``: majority voting over the same groups (the baseline a verifier must beat), and
    ``rise``: per aggregation and policy, accuracy at the largest N minus at N = 4, paired over
    problems, with its 95% bootstrap interval and p-value (``analysis.bootstrap_test``). The largest
    N is one group a problem, so on 60 problems a policy's curve end moves by several points by
    chance alone: the interval says whether a rise or fall is more than that."""
    from tts_utils.analysis import bootstrap_test
    from tts_utils.problems.grading import extract_answer
    from tts_utils.search.voting import select_index

    by = {}
    for r, s in zip(recs, rewards, strict=True):
        answer = extract_answer(task.STEP_SEP.join(r["steps"]))
        lowest = -math.inf  # below any reward: an answerless sample never wins
        by.setdefault((r["policy"], r["unique_id"]), []).append(
            (r["sample"], r["correct"], min(s) if answer is not None else lowest,
             s[-1] if answer is not None else lowest, answer))
    out, rise = {}, {}
    for agg, col in (("min", 2), ("last", 3), ("majority", None)):
        per_problem = {}  # policy -> problem -> N -> accuracy over the problem's groups of N
        for (pol, uid), xs in sorted(by.items()):
            xs.sort()
            for n in [n for n in BON_NS if n <= len(xs)]:
                groups = [xs[g: g + n] for g in range(0, len(xs) - n + 1, n)]
                # ties go to the earlier sample, as the study's voting does
                if col is None:
                    won = [select_index([x[4] for x in grp], None, "majority") for grp in groups]
                    hits = [0 if w is None else grp[w][1] for w, grp in zip(won, groups, strict=True)]
                else:
                    hits = [max(grp, key=lambda x: (x[col], -x[0]))[1] for grp in groups]
                per_problem.setdefault(pol, {}).setdefault(uid, {})[n] = sum(hits) / len(hits)
        out[agg] = {}
        for pol, probs in per_problem.items():
            curve = {}
            for n in sorted({n for a in probs.values() for n in a}):
                accuracies = [a[n] for a in probs.values() if n in a]
                curve[str(n)] = round(sum(accuracies) / len(accuracies), 4)
            out[agg][pol] = curve
        if col is None:
            continue
        rise[agg] = {}
        for pol, probs in per_problem.items():
            top = max(n for n in BON_NS if all(n in a for a in probs.values()))
            if top > 4:
                mean, lo, hi, p = bootstrap_test([a[top] - a[4] for a in probs.values()])
                rise[agg][pol] = {"n": top, "diff": round(mean, 4), "ci95": [round(lo, 4), round(hi, 4)],
                                  "p": round(p, 4), "problems": len(probs)}
    out["rise"] = rise
    return out


def length_preference(prm, n_per_level: int = 20) -> dict:
    """The same correct solutions written all terse and all verbose: how often the PRM scores the
    verbose one higher (PRM-min and PRM-last), and the mean differences."""
    m500 = [json.loads(x) for x in (DATA / "tinymath500.jsonl").read_text().splitlines()]
    probs = [r for lv in (1, 2, 3, 4, 5) for r in [x for x in m500 if x["level"] == lv][-n_per_level:]]
    problems = [task.parse_problem(r["problem"]) for r in probs]
    terse = prm.score([r["problem"] for r in probs], [task.solve(p, "terse") for p in problems])
    verbose = prm.score([r["problem"] for r in probs], [task.solve(p, "verbose") for p in problems])
    dmin = [min(v.rewards) - min(t.rewards) for t, v in zip(terse, verbose, strict=True)]
    dlast = [v.rewards[-1] - t.rewards[-1] for t, v in zip(terse, verbose, strict=True)]
    return {"n": len(probs),
            "frac_verbose_higher_min": round(sum(d > 0 for d in dmin) / len(dmin), 4),
            "frac_verbose_higher_last": round(sum(d > 0 for d in dlast) / len(dlast), 4),
            "mean_diff_min": round(sum(dmin) / len(dmin), 4), "mean_diff_last": round(sum(dlast) / len(dlast), 4),
            "mean_min_terse": round(sum(min(t.rewards) for t in terse) / len(terse), 4),
            "mean_min_verbose": round(sum(min(v.rewards) for v in verbose) / len(verbose), 4)}


def evaluate_prm(name: str) -> dict:
    from tts_utils.models.prm import load_prm

    setup(0)
    t0 = time.time()
    # on the CPU whatever the machine: the report's numbers must not depend on a GPU being there
    prm = load_prm(name, device="cpu", batch_size=EVAL_BATCH) if name in _registry_names() else \
        load_prm(str(DATA / name), device="cpu", prm_format=PRMS[name]["fmt"], batch_size=EVAL_BATCH)
    recs = heldout_records()
    rewards = [s.rewards for s in prm.score([r["problem"] for r in recs], [r["steps"] for r in recs])]
    pols = sorted({r["policy"] for r in recs})
    res = {"name": name, "n_samples": len(recs), "processbench": processbench_f1(recs, rewards),
           "by_policy": {p: processbench_f1(*zip(*[(r, s) for r, s in zip(recs, rewards, strict=True)
                                                  if r["policy"] == p], strict=True)) for p in pols},
           "best_of_n": best_of_n_curves(recs, rewards),
           "length_preference": length_preference(prm)}
    res["seconds"] = round(time.time() - t0, 1)
    log(f"{name}: F1 {res['processbench']['f1']}, BoN-last {json.dumps(res['best_of_n']['last'])}, verbose-higher"
        f"(min) {res['length_preference']['frac_verbose_higher_min']} ({res['seconds']:.0f}s)", LOG)
    (RUNS / f"eval_{name}.json").write_text(json.dumps(res, indent=1))
    return res


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--names", nargs="*")
    args = ap.parse_args(argv)
    for n in args.names or list(PRMS):
        evaluate_prm(n)


if __name__ == "__main__":
    main()
