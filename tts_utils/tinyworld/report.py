"""Write data/tinyworld/models.json (the registry's manifest) and data/tinyworld/report.json
(training curves, measured properties, sizes and the build's time) from the build's run records."""

from __future__ import annotations

import json
import math
from collections import Counter

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


def fisher_greater(a: int, n_a: int, b: int, n_b: int) -> float:
    """One-sided Fisher exact p-value that a/n_a is above b/n_b (hypergeometric upper tail)."""
    k, n = a + b, n_a + n_b
    total = math.comb(n, k)
    return sum(math.comb(n_a, x) * math.comb(n_b, k - x) for x in range(a, min(k, n_a) + 1)) / total


def falls_within_noise(correct: list[int], n: int, alpha: float = 0.05) -> bool:
    """Accuracy falls with level up to sampling noise: L1 is significantly above L5, and no level is
    significantly above an easier one (one-sided Fisher exact tests at ``alpha``, ``n`` problems a
    level). The strict check fails on floor ties like 0/100 then 1/100; this one does not."""
    if fisher_greater(correct[0], n, correct[-1], n) >= alpha:
        return False
    return all(fisher_greater(correct[j], n, correct[i], n) >= alpha
               for i in range(len(correct)) for j in range(i + 1, len(correct)))


def problems_per_level() -> dict[int, int]:
    """tinymath500's problems a level (greedy accuracy is measured on all of them)."""
    return Counter(json.loads(line)["level"] for line in (DATA / "tinymath500.jsonl").read_text().splitlines()
                   if line.strip())


def policy_properties(evals: dict[str, dict], params: dict[str, int]) -> dict:
    names = sorted(evals, key=lambda n: params[n])
    per_level = problems_per_level()
    if len(set(per_level.values())) != 1:
        raise ValueError(f"tinymath500 should have as many problems at every level, has {dict(per_level)}")
    n_level = per_level[1]
    acc = [evals[n]["greedy"]["tinymath500"] for n in names]
    largest = evals[names[-1]]
    levels = {n: [evals[n]["greedy"][f"L{lv}"] for lv in (1, 2, 3, 4, 5)] for n in names}
    gaps = {}
    for n in names:
        e = evals[n]
        gaps[n] = {g: round(e["pass@k"][g] - e["greedy_on_sample"][g], 4) for g in e["pass@k"]}
    return {
        "order_by_params": names,
        "greedy_rises_with_size": all(a < b for a, b in zip(acc, acc[1:], strict=False)),
        "greedy_tinymath500": dict(zip(names, acc, strict=True)),
        "accuracy_falls_with_level": {n: all(a >= b for a, b in zip(v, v[1:], strict=False))
                                      for n, v in levels.items()},
        "accuracy_falls_with_level_within_noise": {
            n: falls_within_noise([round(a * n_level) for a in v], n_level) for n, v in levels.items()},
        "accuracy_L1_above_L5": {n: v[0] > v[-1] for n, v in levels.items()},
        "largest_below_60_on_L5": largest["greedy"]["L5"] < 0.6,
        "largest_below_60_on_tinyhard30": largest["greedy"]["tinyhard30"] < 0.6,
        "pass_at_k_minus_greedy_on_sample": gaps,
        "pass_at_k_above_greedy_every_size": {
            n: sum(evals[n]["pass@k"].values()) > sum(evals[n]["greedy_on_sample"].values()) for n in names},
    }


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
    params = {n: p["train"]["params"] for n, p in policies.items()}
    timings = _load("timings.json") or {}  # from build.py: each stage's wall time and lanes' CPU time
    report = {
        "timings_s": timings,
        "build_s": build_seconds(timings),
        "total_weight_bytes": sum(p["bytes"] for p in policies.values()) + sum(p["bytes"] for p in prms.values()),
        "policies": policies,
        "prms": prms,
        "policy_properties": policy_properties(evals, params) if len(evals) == len(policies) and evals else None,
    }
    write_json(DATA / "report.json", report)
    return report


if __name__ == "__main__":
    r = write_report()
    print(json.dumps({k: r[k] for k in ("timings_s", "total_weight_bytes", "policy_properties")}, indent=1))
