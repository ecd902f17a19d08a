"""Rebuild the whole tiny world: test sets, policies, PRM data (samples, rollouts), PRMs, the
measurements, data/tinyworld/models.json and data/tinyworld/report.json.

    python -m tts_utils.tinyworld.build              # everything (also `make tinyworld`)
    python -m tts_utils.tinyworld.build --from prm-train   # resume at a stage
    python -m tts_utils.tinyworld.build --only report      # just the manifest and report

Work runs in two single-threaded worker processes at a time (two cores). Every stage is
deterministic (seeded data and init, one thread per process), so the same command gives the same
weights. Stage wall times go to runs/tinyworld/timings.json and into the report.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from tts_utils.tinyworld import task
from tts_utils.tinyworld.common import DATA, ROOT, RUNS, log

PY = sys.executable
POLICY_LANES = [["tiny-policy-l"], ["tiny-policy-m", "tiny-policy-s", "tiny-policy-xs"]]
PRM_LANES = [["tiny-prm-qwen"],
             ["tiny-prm-skywork", "tiny-prm-rlhflow-terse", "tiny-prm-rlhflow-verbose", "tiny-prm-shepherd"]]
# Evaluation has other weights than training: the RLHFlow twins' long chat inputs cost the most
# there, so one goes with tiny-prm-qwen.
PRM_EVAL_LANES = [["tiny-prm-qwen", "tiny-prm-rlhflow-verbose"],
                  ["tiny-prm-skywork", "tiny-prm-rlhflow-terse", "tiny-prm-shepherd"]]
STAGES = ["test-sets", "policies", "evaluate-policies", "prm-sample", "prm-rollout", "prm-train", "evaluate-prms",
          "report"]
LOG = "build.log"


def _lanes(cmds: list[list[str]]) -> list[float]:
    """Run one command list per lane, lanes in parallel, each lane's commands in sequence.

    Returns each lane's CPU seconds (its processes run one thread each): the slowest lane's CPU
    time is what the stage takes on two otherwise idle cores, whatever else shared them."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    procs = []
    for i, lane in enumerate(cmds):
        with open(RUNS / f"lane{i}.log", "a") as out:  # the child keeps its own copy of the handle
            procs.append(subprocess.Popen(["bash", "-c", " && ".join(lane)], cwd=ROOT, env=env, stdout=out,
                                          stderr=subprocess.STDOUT))
    codes, cpu = [], []
    for p in procs:
        _, status, usage = os.wait4(p.pid, 0)  # usage includes the lane's finished child processes
        p.returncode = os.waitstatus_to_exitcode(status)  # reaped here: tell Popen
        codes.append(p.returncode)
        cpu.append(round(usage.ru_utime + usage.ru_stime, 1))
    if any(codes):
        raise SystemExit(f"a worker failed (exit codes {codes}); see runs/tinyworld/lane*.log")
    return cpu


def _m(module: str, *args: str) -> str:
    return " ".join([PY, "-m", f"tts_utils.tinyworld.{module}", *args])


def stage_test_sets() -> None:
    m, h = task.make_test_sets()
    for name, recs in (("tinymath500.jsonl", m), ("tinyhard30.jsonl", h)):
        p = DATA / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("".join(json.dumps(r) + "\n" for r in recs))
        os.chmod(p, 0o644)


def stage_policies() -> list[float]:
    return _lanes([[_m("train_policy", "--only", *lane)] for lane in POLICY_LANES])


def stage_prm_sample() -> list[float]:
    return _lanes([[_m("train_prm", "sample", "--names", *lane)] for lane in POLICY_LANES])


def stage_prm_rollout() -> list[float]:
    return _lanes([[_m("train_prm", "rollout", "--part", str(i), "--parts", "2")] for i in range(2)])


def stage_prm_train() -> list[float]:
    return _lanes([[_m("train_prm", "train", "--names", *lane)] for lane in PRM_LANES])


def stage_evaluate_policies() -> list[float]:
    return _lanes([[_m("evaluate", "--names", *lane)] for lane in POLICY_LANES])


def stage_evaluate_prms() -> list[float]:
    return _lanes([[_m("prm_eval", "--names", *lane)] for lane in PRM_EVAL_LANES])


def stage_report() -> None:
    from tts_utils.tinyworld.report import write_report

    write_report()


RUN = {"test-sets": stage_test_sets, "policies": stage_policies, "prm-sample": stage_prm_sample,
       "prm-rollout": stage_prm_rollout, "prm-train": stage_prm_train,
       "evaluate-policies": stage_evaluate_policies, "evaluate-prms": stage_evaluate_prms,
       "report": stage_report}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--from", dest="start", choices=STAGES, default=STAGES[0])
    ap.add_argument("--only", choices=STAGES)
    args = ap.parse_args(argv)
    RUNS.mkdir(parents=True, exist_ok=True)
    stages = [args.only] if args.only else STAGES[STAGES.index(args.start):]
    tpath = RUNS / "timings.json"
    timings = json.loads(tpath.read_text()) if tpath.exists() else {}
    for st in stages:
        t0 = time.time()
        log(f"stage {st} ...", LOG)
        if st == "report":
            tpath.write_text(json.dumps(timings, indent=1))
        lane_cpu = RUN[st]()  # None for the stages that run in this process
        timings[st] = round(time.time() - t0, 1)
        if lane_cpu:
            timings[f"{st}:lane_cpu"] = lane_cpu
        tpath.write_text(json.dumps(timings, indent=1))
        log(f"stage {st} done in {timings[st]:.0f}s (lane CPU s: {lane_cpu})", LOG)


if __name__ == "__main__":
    main()
