"""Write data/tinyworld/models.json (the registry's manifest) and data/tinyworld/report.json
(training curves, measured properties, sizes and the build's time) from the build's run records."""

from __future__ import annotations

import json

from tts_utils.tinyworld import task
from tts_utils.tinyworld.common import DATA, RUNS, write_json
from tts_utils.tinyworld.train_policy import POLICIES
from tts_utils.tinyworld.train_prm import PRMS


def _load(name: str) -> dict | None:
    p = RUNS / name
    return json.loads(p.read_text()) if p.exists() else None


def _size(name: str) -> int:
    return sum(f.stat().st_size for f in (DATA / name).iterdir()) if (DATA / name).exists() else 0


def build_seconds(timings: dict, train_lanes: list[list[str]] | None = None,
                  train_seconds: dict | None = None) -> dict | None:
    """The one-command build's time from build.py's record: wall seconds, and the seconds it takes on
    two otherwise idle cores (each parallel stage counts its slowest lane's CPU time; the serial
    stages their wall time), which does not depend on what else ran on the machine. The policies
    stage retrains only changed models, so a fresh build's training counts every model's own
    single-core seconds, lane by lane."""
    walls = {k: v for k, v in timings.items() if ":" not in k}
    if not walls:
        return None
    idle = {st: max(timings[f"{st}:lane_cpu"]) if f"{st}:lane_cpu" in timings else w for st, w in walls.items()}
    if train_lanes and train_seconds and all(n in train_seconds for lane in train_lanes for n in lane):
        idle["policies"] = max(sum(train_seconds[n] for n in lane) for lane in train_lanes)
    return {"wall_s": round(sum(walls.values()), 1), "two_idle_cores_s": round(sum(idle.values()), 1),
            "stages_wall_s": walls}


def _target(tid: str, target: str, measured, met: bool) -> dict:
    return {"id": tid, "target": target, "measured": measured, "met": bool(met)}


def uniform_guess_pass_at(k: int) -> float:
    """pass@k of a guesser drawing answers uniformly from the answer range (every answer is a
    running value in 0..task.MAX_VALUE): the chance level that a policy's pass@k must be read against."""
    return round(1 - (1 - 1 / (task.MAX_VALUE + 1)) ** k, 4)


def targets(policies: dict, prms: dict, weight_bytes: int, build: dict | None, judge: dict | None = None) -> list[dict]:
    """The world's measurable targets (the regimes of the paper it must span), each with its
    measured value and met / not met. Properties of the world, never of the study's verdicts."""
    pols = sorted(policies, key=lambda n: policies[n]["train"]["params"])
    ev = {n: policies[n]["eval"] for n in pols}
    params = [policies[n]["train"]["params"] for n in pols]
    greedy = [ev[n]["greedy"]["tinymath500"] for n in pols]
    large = pols[-1]
    levels = {n: [ev[n]["greedy"][f"L{lv}"] for lv in (1, 2, 3, 4, 5)] for n in pols}
    k = ev[large]["k"]  # the samples per problem of the evaluation (64 as built)
    p64 = {n: ev[n]["pass@k"][f"pass@{k}"] for n in pols}
    chance = uniform_guess_pass_at(k)
    lucky = {n: ev[n]["lucky"]["lucky_share"] for n in pols}
    gap = {n: round(p64[n]["tinymath500"] - ev[n]["greedy_on_sample"]["tinymath500"], 4) for n in pols}
    out = [
        _target("1 policy ladder", ">= 4 policies of one family, >= 10x apart in parameters",
                {"n": len(pols), "ratio": round(params[-1] / params[0], 1)}, len(pols) >= 4 and params[-1] >= 10 * params[0]),
        _target("1 policy ladder", "greedy on tinymath500: smallest 15-35%, largest >= 60%, strictly rising with size",
                dict(zip(pols, greedy, strict=True)), 0.15 <= greedy[0] <= 0.35 and greedy[-1] >= 0.6
                and all(a < b for a, b in zip(greedy, greedy[1:], strict=False))),
        _target("1 policy ladder", f"<= 10% of each policy's right T = 0.7 samples right by luck (a wrong step); "
                f"a uniform guesser over 0..{task.MAX_VALUE} has pass@{k} = {chance:.1%}", lucky, all(v <= 0.1 for v in lucky.values())),
        _target("2 difficulty ladder", "greedy accuracy strictly falls with level (L1 > ... > L5), every policy",
                levels, all(all(a > b for a, b in zip(v, v[1:], strict=False)) for v in levels.values())),
        _target("2 difficulty ladder", "largest policy >= 90% on level 1 and <= 30% on level 5",
                {"L1": levels[large][0], "L5": levels[large][-1]}, levels[large][0] >= 0.9 and levels[large][-1] <= 0.3),
        _target("2 difficulty ladder", "tinyhard30 greedy <= 15% for every policy",
                {n: ev[n]["greedy"]["tinyhard30"] for n in pols}, all(ev[n]["greedy"]["tinyhard30"] <= 0.15 for n in pols)),
        _target("2 difficulty ladder", f"tinyhard30 pass@{k} >= 20% for the largest",
                p64[large]["tinyhard30"], p64[large]["tinyhard30"] >= 0.2),
        _target("3 headroom", f"pass@{k} - greedy on tinymath500 (held-out sample) >= 30 points for every policy but "
                "the largest, >= 15 for the largest", gap,
                all(gap[n] >= 0.3 for n in pols[:-1]) and gap[large] >= 0.15),
        _target("3 headroom", f"pass@{k} >= 50% on level 5 for the largest", p64[large]["L5"], p64[large]["L5"] >= 0.5),
    ]
    if prms:
        out += prm_targets(prms, pols, p64, chance, judge, ev[large]["greedy"]["tinymath500"])
    minority = {n: min(ev[n]["verbose_step_fraction"], 1 - ev[n]["verbose_step_fraction"]) for n in pols}
    out.append(_target("5 length twins", "every policy writes the minority style in >= 25% of its steps at T = 0.7",
                       minority, all(v >= 0.25 for v in minority.values())))
    if build:
        out.append(_target("6 build", "make tinyworld <= 150 minutes on 2 idle cores",
                           round(build["two_idle_cores_s"] / 60, 1), build["two_idle_cores_s"] <= 150 * 60))
    out.append(_target("6 build", "weights <= 50 MB", round(weight_bytes / 1e6, 1), weight_bytes <= 50e6))
    return out


def prm_targets(prms: dict, pols: list[str], p64: dict, chance: float, judge: dict | None,
                largest_greedy: float) -> list[dict]:
    f1 = {n: p["eval"]["processbench"]["f1"] for n, p in prms.items()}
    fmts = {p["train"]["fmt"] for p in prms.values()}
    best = max(f1, key=f1.get)
    bon = prms[best]["eval"]["best_of_n"]
    # a policy at the floor: its samples hold a right answer no more often than uniform guesses do
    playing = [p for p in pols if p64[p]["tinymath500"] > chance]
    rises, above = {}, {}
    for agg in ("last", "min"):
        # [N = 4, N = 64, the paired difference's 95% interval over problems]
        rises[agg] = {p: [bon[agg][p]["4"], bon[agg][p]["64"], bon["rise"][agg][p]["ci95"]] for p in pols}
        above[agg] = [p for p in playing if bon["rise"][agg][p]["ci95"][0] > 0]
    middle = pols[1:-1]
    margin = {p: round(bon["last"][p]["64"] - bon["majority"][p]["64"], 4) for p in pols}
    judge_greedy = judge["greedy"]["tinymath500"] if judge else None
    twins = {n: p["eval"]["length_preference"]["frac_verbose_higher_min"] for n, p in prms.items() if "rlhflow" in n}
    return [
        _target("2 strongest PRM", "its base is not a study policy and is stronger at the task than the largest "
                "policy (greedy on tinymath500: base, largest policy)", [judge_greedy, largest_greedy],
                prms[best]["train"]["init"] not in pols and judge_greedy is not None and judge_greedy > largest_greedy),
        _target("3 it verifies", f"first-error F1 of the strongest ({best}) on every policy's held-out samples >= 0.80 "
                "(by policy beside it)", {"all": f1[best], **{p: prms[best]["eval"]["by_policy"][p]["f1"] for p in pols}},
                f1[best] >= 0.8),
        _target("3 it verifies", "Best-of-N rises from N = 4 to N = 64 for every policy not at the floor, the paired "
                "95% interval above zero for >= 2 policies, with PRM-Last-Max and with PRM-Min-Max", rises,
                all(rises[a][p][1] > rises[a][p][0] for a in rises for p in playing)
                and all(len(v) >= 2 for v in above.values())),
        _target("3 it verifies", "at N = 64, PRM-Last-Max beats majority voting by >= 8 points for the two middle "
                "policies", margin, all(margin[p] >= 0.08 for p in middle)),
        _target("4 PRM ladder", ">= 5 PRMs in the four real formats", {"n": len(prms), "formats": sorted(fmts)},
                len(prms) >= 5 and len(fmts) == 4),
        _target("4 PRM ladder", "first-error F1 (every policy's 64 samples of held-out problems) spans >= 0.35",
                f1, max(f1.values()) - min(f1.values()) >= 0.35),
        _target("4 PRM ladder", "the length twins differ in taste (share of problems where the verbose solution "
                "scores higher, PRM-min)", twins, len(twins) == 2 and max(twins.values()) - min(twins.values()) >= 0.25),
    ]


def write_report() -> dict:
    from tts_utils.tinyworld.build import TRAIN_LANES  # the lanes a fresh build trains the models in
    from tts_utils.tinyworld.train_policy import JUDGE

    manifest, policies, prms = [], {}, {}
    for name in POLICIES:
        tr, ev = _load(f"train_{name}.json"), _load(f"eval_{name}.json")
        if tr is None:
            continue
        manifest.append({"name": name, "kind": "policy", "source": f"data/tinyworld/{name}", "family": "tiny",
                         "params": tr["params"], "train_tokens": tr["train_tokens"], "prm_format": None})
        policies[name] = {"train": tr, "eval": ev, "bytes": _size(name)}
    judge = {}
    for name in JUDGE:
        tr = _load(f"train_{name}.json")
        if tr is not None:
            judge[name] = {"train": tr, "eval": _load(f"eval_{name}.json"), "bytes": _size(name)}
    for name, spec in PRMS.items():
        tr, ev = _load(f"train_{name}.json"), _load(f"eval_{name}.json")
        if tr is None:
            continue
        init_tokens = {**policies, **judge}.get(spec["init"], {}).get("train", {}).get("train_tokens", 0) + \
            ((tr.get("format_lesson") or {}).get("tokens") or 0)  # its base's lesson in the PRM's format
        manifest.append({"name": name, "kind": "prm", "source": f"data/tinyworld/{name}", "family": "tiny",
                         "params": tr["params"], "train_tokens": tr["train_tokens"] + init_tokens,
                         "prm_format": spec["fmt"]})
        prms[name] = {"train": tr, "eval": ev, "bytes": _size(name),
                      "train_tokens_note": "PRM training tokens plus those of the model it starts from"}
    write_json(DATA / "models.json", manifest)  # the judge's base is no model of the study: not listed
    evals = {n: p["eval"] for n, p in policies.items() if p["eval"]}
    timings = _load("timings.json") or {}  # from build.py: each stage's wall time and lanes' CPU time
    report = {
        "timings_s": timings,
        "build_s": build_seconds(timings, TRAIN_LANES, {n: p["train"]["seconds"] for n, p in {**policies, **judge}.items()}),
        "total_weight_bytes": sum(p["bytes"] for p in [*policies.values(), *judge.values(), *prms.values()]),
        "policies": policies,
        "judge": judge,
        "prms": prms,
    }
    if evals and len(evals) == len(policies):
        report["targets"] = targets(policies, {n: p for n, p in prms.items() if p["eval"]}, report["total_weight_bytes"],
                                    report["build_s"], next((j["eval"] for j in judge.values()), None))
    write_json(DATA / "report.json", report)
    return report


if __name__ == "__main__":
    r = write_report()
    print(json.dumps({k: r.get(k) for k in ("timings_s", "total_weight_bytes", "targets")}, indent=1))
