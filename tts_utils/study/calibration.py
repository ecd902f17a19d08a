"""Null calibration and power of the findings' verdicts, on simulated tables.

Each finding's *real* verdict function (``tts_utils.study.finding_*``) is run on many simulated
tables of the shape it reads. Under the null every method, PRM, policy and voting rule draws
each problem's correctness from the same per-problem probability (or, for F4, each problem's
token count from the same distribution), so any "agrees" or "disagrees" is false; the rate of
each must stay at or under 5% per finding. With a planted effect of known size in the paper's
direction, the share of "agrees" is the power.

Why simulated tables and not relabelled candidates: the verdicts read per-problem correctness
(and token counts), never the candidates' text, so simulating that layer exercises every
statistical step (cross-fitted choices, difficulty bins from an independent pass@1 set, paired
bootstrap over problems, Holm) at a cost CI can afford.

    python -m tts_utils.study.calibration            # print the table
    python -m tts_utils.study.calibration --docs     # and write it into docs/statistics.md's calibration section

The bootstrap uses ``N_BOOT`` resamples instead of the notebooks' 2000: its Monte Carlo error on
a p-value near 0.05 is about 0.01, small next to the binomial error of a rate over 200 tables
(about 1.5 points at 5%), and it keeps the whole run to about a minute on one core.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tts_utils import analysis, paths, study
from tts_utils.study import paper_coverage, prm_failures

TABLES = 200        # simulated tables per finding and scenario
PROBLEMS = 200      # problems per simulated table
BUDGETS = (4, 16)
PLANTED = 0.10      # effect planted for power: 10 points of accuracy (F4: tokens x (1 + F4_SCALE * PLANTED))
F4_SCALE = 2.5      # F4's planted effect: the long PRM's search writes 1 + F4_SCALE * d times the tokens
N_BOOT = 500
SEED = 20250226
DOCS_START, DOCS_END = "<!-- calibration:start -->", "<!-- calibration:end -->"
DOCS_PAGE = paths.DOCS_DIR / "statistics.md"


def _difficulty(rng: np.random.Generator, k: int) -> np.ndarray:
    """Per-problem probability of a correct answer: a third hard, a third medium, a third easy,
    so every difficulty bin of the paper is populated."""
    centre = rng.choice([0.03, 0.3, 0.8], size=k)
    return np.clip(centre + rng.normal(0, 0.05, size=k), 0.0, 1.0)


def _rows(rng: np.random.Generator, p: np.ndarray, configs: list[tuple[dict, float]], budgets=BUDGETS,
          rules: tuple[str, ...] = ("prm_last_vote",)) -> pd.DataFrame:
    """Per-problem votes: for each (config, shift), budget and rule, problem i is right with
    probability clip(p_i + shift). Built as numpy columns and one frame: this is the hot loop."""
    k = len(p)
    ids = np.array([f"q{i}" for i in range(k)], dtype=object)
    cols: dict[str, list] = {"policy": [], "prm": [], "method": [], "n": [], "rule": [], "correct": []}
    for cfg, shift in configs:
        q = np.clip(p + shift, 0.0, 1.0)
        for n in (budgets if cfg["method"] != "cot" else (1,)):
            for rule in (rules if cfg.get("prm") else ("majority",)):
                for key in ("policy", "prm", "method"):
                    cols[key].append(np.full(k, cfg[key], dtype=object))
                cols["n"].append(np.full(k, n))
                cols["rule"].append(np.full(k, rule, dtype=object))
                cols["correct"].append(rng.random(k) < q)
    reps = len(cols["n"])
    return pd.DataFrame({"dataset": "sim", "seed": 0, **{key: np.concatenate(v) for key, v in cols.items()},
                         "problem_id": np.tile(ids, reps)})


# --------------------------------------------------------------------------- one scenario per finding

def _f1(rng: np.random.Generator, d: float) -> dict:
    p = _difficulty(rng, PROBLEMS)
    configs = [({"policy": "pol", "prm": prm, "method": m}, shift)
               for prm, sign in (("weak", -1), ("strong", +1))
               for m, shift in (("best_of_n", 0.0), ("beam_search", sign * d), ("dvts", sign * d))]
    return study.finding_strategy_vs_prm(_rows(rng, p, configs), ["weak"], ["strong"], n_boot=N_BOOT)[1]


def _f2(rng: np.random.Generator, d: float) -> dict:
    p = _difficulty(rng, PROBLEMS)
    configs = [({"policy": pol, "prm": "prm", "method": m}, shift)
               for pol, sign in (("small", +1), ("large", -1))
               for m, shift in (("best_of_n", 0.0), ("beam_search", sign * d), ("dvts", sign * d))]
    return study.finding_policy_size(_rows(rng, p, configs), {"small": 1e3, "large": 1e6}, n_boot=N_BOOT)[1]


def _f3(rng: np.random.Generator, d: float) -> dict:
    p = _difficulty(rng, PROBLEMS)
    # difficulty from an independent set of 16 samples (as pass1_samples), then the paper's bins
    pass1 = pd.DataFrame({"dataset": "sim", "policy": "pol", "problem_id": [f"q{i}" for i in range(len(p))],
                          "pass1": rng.binomial(16, p) / 16})
    bins = analysis.add_difficulty(pass1).set_index("problem_id")["difficulty"]
    # planted: beam search d worse on easy, d better on hard problems (by the true probability)
    shift = np.where(p > 0.5, -d, np.where(p < 0.1, d, 0.0))
    acc = pd.concat([_rows(rng, p, [({"policy": "pol", "prm": "prm", "method": "best_of_n"}, 0.0)]),
                     _rows(rng, np.clip(p + shift, 0, 1), [({"policy": "pol", "prm": "prm", "method": "beam_search"},
                                                            0.0)])], ignore_index=True)
    acc["difficulty"] = acc["problem_id"].map(bins)
    return study.finding_difficulty(acc, ["pol"], {"pol": 1e3, "large": 1e6}, n_boot=N_BOOT)[1]


def _f4(rng: np.random.Generator, d: float) -> dict:
    k = PROBLEMS
    base = rng.lognormal(4.0, 0.5, size=k)  # each problem's typical tokens per candidate
    frames = []
    for prm, scale in (("short", 1.0), ("long", 1.0 + F4_SCALE * d)):
        for n in BUDGETS:
            tok = base * scale * rng.lognormal(0.0, 0.3, size=(n, k))
            frames.append(pd.DataFrame({"method": "beam_search", "prm": prm, "policy": "pol", "n": n, "seed": 0,
                                        "problem_id": np.tile([f"q{i}" for i in range(k)], n),
                                        "policy_tokens": tok.ravel().round().astype(int) + 1,
                                        "num_steps": 3, "steps": [["x"]] * (n * k)}))
    return study.finding_length_bias(pd.concat(frames, ignore_index=True), "short", "long", n_boot=N_BOOT)[1]


def _f5(rng: np.random.Generator, d: float) -> dict:
    # the rules vote over the same candidates, so they mostly agree: each rule's correctness is the
    # candidate set's (drawn once per PRM, N and problem) with 5% of problems flipped at random;
    # planted: the sensitive PRM's vote rules are also right on a further share d of problems
    p = _difficulty(rng, PROBLEMS)
    k = len(p)
    ids = np.array([f"q{i}" for i in range(k)], dtype=object)
    cols: dict[str, list] = {"prm": [], "n": [], "rule": [], "correct": []}
    for prm, gain in (("sensitive", d), ("insensitive", 0.0)):
        for n in BUDGETS:
            base = rng.random(k) < p
            for agg in ("min", "last", "avg"):
                for kind in ("max", "vote"):
                    ok = base ^ (rng.random(k) < 0.05)
                    if kind == "vote":
                        ok = ok | (rng.random(k) < gain)
                    cols["prm"].append(np.full(k, prm, dtype=object))
                    cols["n"].append(np.full(k, n))
                    cols["rule"].append(np.full(k, f"prm_{agg}_{kind}", dtype=object))
                    cols["correct"].append(ok)
    acc = pd.DataFrame({"dataset": "sim", "policy": "pol", "method": "best_of_n", "seed": 0,
                        **{key: np.concatenate(v) for key, v in cols.items()},
                        "problem_id": np.tile(ids, len(cols["n"]))})
    return study.finding_voting(acc, "sensitive", "insensitive", n_boot=N_BOOT)[1]


def _tts_configs(policy: str, d: float) -> list[tuple[dict, float]]:
    return [({"policy": policy, "prm": prm, "method": m}, d)
            for prm in ("weak", "strong") for m in ("best_of_n", "beam_search", "dvts")]


def _binned(rng: np.random.Generator, acc: pd.DataFrame, p: np.ndarray, policy: str) -> pd.DataFrame:
    """``acc`` with the paper's difficulty bins of ``policy`` from 16 independent samples a problem
    (as pass1_samples): the compute-optimal choice is made per bin and N."""
    pass1 = pd.DataFrame({"dataset": "sim", "policy": policy, "problem_id": [f"q{i}" for i in range(len(p))],
                          "pass1": rng.binomial(16, p) / 16})
    bins = analysis.add_difficulty(pass1).set_index("problem_id")["difficulty"]
    return acc.assign(difficulty=acc["problem_id"].map(bins))


def _f6(rng: np.random.Generator, d: float) -> dict:
    p = _difficulty(rng, PROBLEMS)
    acc = _rows(rng, p, _tts_configs("small", d) + [({"policy": "large", "prm": "", "method": "cot"}, 0.0)])
    return study.finding_small_beats_large(_binned(rng, acc, p, "small"), "small", "large", "strong",
                                           n_boot=N_BOOT)[1]


def _f7(rng: np.random.Generator, d: float) -> dict:
    p = _difficulty(rng, PROBLEMS)
    configs = _tts_configs("pol", d) + [({"policy": "pol", "prm": "", "method": "cot"}, 0.0),
                                        ({"policy": "pol", "prm": "", "method": "majority"}, 0.0)]
    acc = _binned(rng, _rows(rng, p, configs), p, "pol")
    return study.finding_table5(acc, ["pol"], "strong", n_boot=N_BOOT, with_table=False)[1]


def _fig3(rng: np.random.Generator, d: float) -> dict:
    # the strongest policy's problems fall in the top pass@1 bin with probability 1/2 (+ d planted)
    top = rng.random(PROBLEMS) < 0.5 + d
    pass1 = pd.DataFrame({"dataset": "sim", "policy": "large", "problem_id": [f"q{i}" for i in range(PROBLEMS)],
                          "pass1": np.where(top, 0.9, 0.5)})
    return paper_coverage.finding_pass1_distribution(pass1, {"large": 1e6})[1]


FIG6_ABILITY = pd.Series({f"prm{i}": a for i, a in enumerate((0.2, 0.35, 0.5, 0.65, 0.8))})


def _fig6(rng: np.random.Generator, d: float) -> dict:
    # planted: accuracy rises with ln ability, by d from the weakest PRM to the strongest
    x = np.log(FIG6_ABILITY.to_numpy())
    rise = d * (x - x.mean()) / (x.max() - x.min())
    p = _difficulty(rng, PROBLEMS)
    configs = [({"policy": "pol", "prm": prm, "method": m}, float(s))
               for prm, s in zip(FIG6_ABILITY.index, rise, strict=True) for m in ("best_of_n", "beam_search", "dvts")]
    return paper_coverage.finding_prm_ability(_rows(rng, p, configs), FIG6_ABILITY, "pol", n_boot=N_BOOT)[1]


def _figs13_18(rng: np.random.Generator, d: float) -> dict:
    # Best-of-N-like solutions of 3-5 steps, an error in about half; null: every score uniform,
    # whatever the step; planted: a share 8d of the scores comes from a PRM that scores the first
    # error and what follows high and correct steps lower the later (and longer) they come
    rows = []
    for i in range(PROBLEMS // 4):
        for k in range(4):
            length = int(rng.integers(3, 6))
            first = int(rng.integers(0, length)) if rng.random() < 0.5 else length
            blind = [0.6 - 0.1 * j if j < first else 0.95 for j in range(length)]
            mix = rng.random(length) < 8 * d
            scores = np.where(mix, blind, rng.random(length))
            for j in range(length):
                label = "correct" if j < first else "first_error" if j == first else "after_error"
                tokens = 4 + 3 * j + int(rng.integers(0, 4))  # later steps are longer, as in real solutions
                rows.append(("pol", "prm", 0, f"q{i}", k, j, length, float(scores[j]), tokens,
                             first if first < length else -1, label))
    steps = pd.DataFrame(rows, columns=["policy", "prm", "seed", "problem_id", "candidate", "step", "steps", "score",
                                        "tokens", "first_error", "label"])
    return prm_failures.finding_failures(prm_failures.failure_rates(steps, n_boot=N_BOOT))


FINDINGS: dict[str, tuple[str, Callable[[np.random.Generator, float], dict]]] = {
    "F1": ("best method depends on the PRM", _f1),
    "F2": ("best method depends on the policy size", _f2),
    "F3": ("best method depends on difficulty", _f3),
    "F4": ("PRM length bias", _f4),
    "F5": ("sensitivity to the voting rule", _f5),
    "F6": ("small + TTS beats large + CoT", _f6),
    "F7": ("compute-optimal TTS beats CoT and majority", _f7),
    "Fig. 3": ("the strongest policy puts most problems in the top pass@1 bin", _fig3),
    "Fig. 6": ("TTS accuracy rises with PRM ability (5 PRMs)", _fig6),
    "Figs. 13-18": ("a PRM's failures beyond chance, and its scoring biases", _figs13_18),
}


@dataclass
class Rates:
    finding: str
    false_agree: float
    false_disagree: float
    power: float
    tables: int
    power_tables: int


def calibrate(tables: int = TABLES, findings: tuple[str, ...] = tuple(FINDINGS), seed: int = SEED,
              power_tables: int | None = None, progress: bool = False) -> list[Rates]:
    """For each finding: the rates of "agrees" and "disagrees" on ``tables`` null tables, and
    of "agrees" on ``power_tables`` (default: as many) tables with the planted effect.
    Deterministic for a seed: null and planted tables come from separate streams."""
    power_tables = tables if power_tables is None else power_tables
    out = []
    for f in findings:
        _, fn = FINDINGS[f]
        stream = list(FINDINGS).index(f) + 1  # F1-F7 keep the streams they had when keyed by number
        null_rng, planted_rng = (np.random.default_rng([seed, stream, s]) for s in (0, 1))
        null = [fn(null_rng, 0.0)["verdict"] for _ in range(tables)]
        planted = [fn(planted_rng, PLANTED)["verdict"] for _ in range(power_tables)]
        out.append(Rates(f, null.count("agrees") / tables, null.count("disagrees") / tables,
                         planted.count("agrees") / max(power_tables, 1), tables, power_tables))
        if progress:
            print(out[-1], file=sys.stderr, flush=True)
    return out


def markdown(rates: list[Rates]) -> str:
    lines = [f"Each finding's verdict function run on {rates[0].tables} simulated tables with no true effect "
             f"and {rates[0].power_tables} with an effect planted in the paper's direction ({PROBLEMS} problems, "
             f"N = {', '.join(map(str, BUDGETS))}, {N_BOOT} bootstrap resamples; planted: "
             f"{PLANTED:.0%} accuracy; F4: tokens x {1 + F4_SCALE * PLANTED:.2f}; F5: the sensitive PRM's vote rules "
             f"right on a further {PLANTED:.0%} of problems; Fig. 3: a top-bin share of {0.5 + PLANTED:.0%}; Fig. 6: "
             f"{PLANTED:.0%} accuracy from the weakest to the strongest PRM; Figs. 13-18: {8 * PLANTED:.0%} of the scores "
             "from a PRM blind to errors). "
             "Written by `python -m tts_utils.study.calibration --docs`; `tests/test_calibration.py` "
             "asserts the false rates are at most 5%.", "",
             "| finding | claim | false agrees (null) | false disagrees (null) | power (planted) |",
             "| --- | --- | ---: | ---: | ---: |"]
    for r in rates:
        lines.append(f"| {r.finding} | {FINDINGS[r.finding][0]} | {r.false_agree:.1%} | {r.false_disagree:.1%} | "
                     f"{r.power:.1%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", action="store_true", help="write the table into docs/statistics.md's calibration section")
    ap.add_argument("--tables", type=int, default=TABLES)
    args = ap.parse_args(argv)
    if args.tables < 1:
        ap.error("--tables must be positive")
    md = markdown(calibrate(args.tables, progress=True))
    print(md)
    if args.docs:
        if not paths.replace_section(DOCS_PAGE, DOCS_START, DOCS_END, md):
            print(f"error: {DOCS_PAGE} has no {DOCS_START} ... {DOCS_END} section", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
