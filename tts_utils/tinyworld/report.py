"""Write data/tinyworld/models.json (the registry's manifest) and data/tinyworld/report.json
(training curves, measured properties, sizes and the build's time) from the build's run records."""

from __future__ import annotations

import json

from tts_utils.tinyworld.common import DATA, RUNS, write_json
from tts_utils.tinyworld.train_policy import POLICIES
from tts_utils.tinyworld.train_prm import PRMS


def _load(name: str) -> dict | None:
    p = RUNS / name
    return json.loads(p.read_text()) if p.exists() else None


def _size(name: str) -> int:
    return sum(f.stat().st_size for f in (DATA / name).iterdir()) if (DATA / name).exists() else 0


def build_seconds(timings: dict) -> dict | None:
    """The one-command build's time from build.py's record: wall seconds, and the seconds it takes on
    two otherwise idle cores (each parallel stage counts its slowest lane's CPU time; the serial
    stages their wall time), which does not depend on what else ran on the machine."""
    walls = {k: v for k, v in timings.items() if ":" not in k}
    if not walls:
        return None
    idle = sum(max(timings[f"{st}:lane_cpu"]) if f"{st}:lane_cpu" in timings else w for st, w in walls.items())
    return {"wall_s": round(sum(walls.values()), 1), "two_idle_cores_s": round(idle, 1), "stages_wall_s": walls}


def _target(tid: str, target: str, measured, met: bool) -> dict:
    return {"id": tid, "target": target, "measured": measured, "met": bool(met)}


def targets(policies: dict, prms: dict, weight_bytes: int, build: dict | None) -> list[dict]:
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
    gap = {n: round(p64[n]["tinymath500"] - ev[n]["greedy_on_sample"]["tinymath500"], 4) for n in pols}
    out = [
        _target("1 policy ladder", ">= 4 policies of one family, >= 30x apart in parameters",
                {"n": len(pols), "ratio": round(params[-1] / params[0], 1)}, len(pols) >= 4 and params[-1] >= 30 * params[0]),
        _target("1 policy ladder", "greedy on tinymath500: smallest <= 25%, largest >= 65%, strictly rising with size",
                dict(zip(pols, greedy, strict=True)),
                greedy[0] <= 0.25 and greedy[-1] >= 0.65 and all(a < b for a, b in zip(greedy, greedy[1:], strict=False))),
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
        f1 = {n: p["eval"]["processbench"]["f1"] for n, p in prms.items()}
        fmts = {p["train"]["fmt"] for p in prms.values()}
        best = max(f1, key=f1.get)
        curve = prms[best]["eval"]["best_of_n"]["last"]
        # beside each [N = 4, N = 64]: the paired difference's 95% interval over problems (where the
        # evaluation measured it), so that a reader sees how much of a rise or fall chance can make
        interval = prms[best]["eval"]["best_of_n"].get("rise", {}).get("last", {})
        rises = {pol: [c["4"], c[max(c, key=int)]] + ([interval[pol]["ci95"]] if pol in interval else [])
                 for pol, c in curve.items()}
        out += [
            _target("4 PRM ladder", ">= 5 PRMs in the four real formats", {"n": len(prms), "formats": sorted(fmts)},
                    len(prms) >= 5 and len(fmts) == 4),
            _target("4 PRM ladder", "first-error F1 (every policy's 64 samples of held-out problems) spans >= 0.35, "
                    "the strongest >= 0.85", f1, max(f1.values()) - min(f1.values()) >= 0.35 and f1[best] >= 0.85),
            _target("4 PRM ladder", f"the strongest PRM ({best}) verifies: Best-of-N (PRM-Last-Max) accuracy at N = 64 "
                    "above N = 4 for every policy ([N = 4, N = 64, 95% interval of the difference])", rises,
                    all(v[1] > v[0] for v in rises.values())),
        ]
    minority = {n: min(ev[n]["verbose_step_fraction"], 1 - ev[n]["verbose_step_fraction"]) for n in pols}
    out.append(_target("5 length twins", "every policy writes the minority style in >= 25% of its steps at T = 0.7",
                       minority, all(v >= 0.25 for v in minority.values())))
    if build:
        out.append(_target("6 build", "make tinyworld <= 60 minutes on 2 idle cores",
                           round(build["two_idle_cores_s"] / 60, 1), build["two_idle_cores_s"] <= 3600))
    out.append(_target("6 build", "weights <= 30 MB", round(weight_bytes / 1e6, 1), weight_bytes <= 30e6))
    return out


def write_report() -> dict:
    manifest, policies, prms = [], {}, {}
    for name in POLICIES:
        tr, ev = _load(f"train_{name}.json"), _load(f"eval_{name}.json")
        if tr is None:
            continue
        manifest.append({"name": name, "kind": "policy", "source": f"data/tinyworld/{name}", "family": "tiny",
                         "params": tr["params"], "train_tokens": tr["train_tokens"], "prm_format": None})
        policies[name] = {"train": tr, "eval": ev, "bytes": _size(name)}
    for name, spec in PRMS.items():
        tr, ev = _load(f"train_{name}.json"), _load(f"eval_{name}.json")
        if tr is None:
            continue
        init_tokens = policies.get(spec["init"], {}).get("train", {}).get("train_tokens", 0)
        manifest.append({"name": name, "kind": "prm", "source": f"data/tinyworld/{name}", "family": "tiny",
                         "params": tr["params"], "train_tokens": tr["train_tokens"] + init_tokens,
                         "prm_format": spec["fmt"]})
        prms[name] = {"train": tr, "eval": ev, "bytes": _size(name),
                      "train_tokens_note": "PRM training tokens plus those of the policy it starts from"}
    write_json(DATA / "models.json", manifest)
    evals = {n: p["eval"] for n, p in policies.items() if p["eval"]}
    timings = _load("timings.json") or {}  # from build.py: each stage's wall time and lanes' CPU time
    report = {
        "timings_s": timings,
        "build_s": build_seconds(timings),
        "total_weight_bytes": sum(p["bytes"] for p in policies.values()) + sum(p["bytes"] for p in prms.values()),
        "policies": policies,
        "prms": prms,
    }
    if evals and len(evals) == len(policies):
        report["targets"] = targets(policies, {n: p for n, p in prms.items() if p["eval"]}, report["total_weight_bytes"],
                                    report["build_s"])
    write_json(DATA / "report.json", report)
    return report


if __name__ == "__main__":
    r = write_report()
    print(json.dumps({k: r.get(k) for k in ("timings_s", "total_weight_bytes", "targets")}, indent=1))
