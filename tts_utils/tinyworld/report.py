"""Write data/tinyworld/models.json (the registry's manifest) and data/tinyworld/report.json
(training curves, measured properties, sizes and wall times) from the build's run records."""

from __future__ import annotations

import json
import re

from tts_utils.tinyworld.common import DATA, RUNS, write_json
from tts_utils.tinyworld.train_policy import POLICIES
from tts_utils.tinyworld.train_prm import PRMS


def _load(name: str) -> dict | None:
    p = RUNS / name
    return json.loads(p.read_text()) if p.exists() else None


def _size(name: str) -> int:
    return sum(f.stat().st_size for f in (DATA / name).iterdir()) if (DATA / name).exists() else 0


def measured_seconds() -> dict:
    """Seconds each piece of work took (single-threaded process each), from the run records, and
    the build's wall time on two lanes (build.py's lane assignment), stage by stage."""
    from tts_utils.tinyworld.build import POLICY_LANES, PRM_LANES

    secs: dict[str, float] = {}
    for n in POLICIES:
        for kind in ("train", "eval"):
            r = _load(f"{kind}_{n}.json")
            if r:
                secs[f"{kind}:{n}"] = r["seconds"]
    for n in PRMS:
        r = _load(f"train_{n}.json")
        if r:
            secs[f"train:{n}"] = r["seconds"]
    logf = RUNS / "prms.log"
    if logf.exists():
        for line in logf.read_text().splitlines():
            m = re.search(r"sampled (\S+): .* (\d+)s$", line)
            if m:
                secs[f"sample:{m.group(1)}"] = float(m.group(2))
            m = re.search(r"rollouts part (\d+): .* (\d+)s$", line)
            if m:
                secs[f"rollout:{m.group(1)}"] = float(m.group(2))
            m = re.search(r"(tiny-prm-\S+): F1 .* \((\d+)s\)$", line)
            if m:
                secs[f"eval:{m.group(1)}"] = float(m.group(2))

    def lanes(prefix, lane_names):
        return max(sum(secs.get(f"{prefix}:{n}", 0.0) for n in lane) for lane in lane_names)

    stages = {
        "policies": lanes("train", POLICY_LANES),
        "prm-sample": lanes("sample", POLICY_LANES),
        "prm-rollout": max(secs.get("rollout:0", 0.0), secs.get("rollout:1", 0.0)),
        "prm-train": lanes("train", PRM_LANES),
        "evaluate": max(sum(secs.get(f"eval:{n}", 0.0) for n in POLICY_LANES[i] + PRM_LANES[i]) for i in range(2)),
    }
    return {"pieces_s": secs, "two_lane_wall_s_by_stage": stages, "two_lane_wall_s_total": round(sum(stages.values()), 1),
            "two_lane_wall_s_without_evaluate": round(sum(v for k, v in stages.items() if k != "evaluate"), 1)}


def policy_properties(evals: dict[str, dict], params: dict[str, int]) -> dict:
    names = sorted(evals, key=lambda n: params[n])
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
    report = {
        "timings_s": _load("timings.json") or {},  # from build.py, when the build ran in one go
        "measured_s": measured_seconds(),
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
