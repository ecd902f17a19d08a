"""Rebuild the whole tiny world: test sets, policies, PRM data (samples, rollouts), PRMs, the
measurements, data/tinyworld/models.json and data/tinyworld/report.json.

    python -m tts_utils.tinyworld.build              # what changed (also `make tinyworld`)
    python -m tts_utils.tinyworld.build --from prm-train   # a stage and every later one, changed or not
    python -m tts_utils.tinyworld.build --only report      # just the manifest and report

A plain run resumes: each stage has a fingerprint, a digest of the code it runs (its module and
every module of the package that module imports, followed transitively) and of the fingerprints
of the stages it reads. A stage runs when its fingerprint differs from the one recorded when it
last finished (runs/tinyworld/stages.json): a changed stage reruns itself and what depends on it,
nothing else, and a build stopped halfway picks up at the first stage that did not finish. A
fresh clone has no record, so it builds everything. The policies stage goes one model further:
each model (a policy or the judge's base) has its own fingerprint, the training code without the
table of shapes plus its own row, so changing one model's row retrains that model only (the stage's
fingerprint, which later stages read, is the digest of its models').

Work runs in two single-threaded worker processes at a time (two cores). Every stage is
deterministic (seeded data and init, one thread per process), so the same command gives the same
weights. Stage wall times go to runs/tinyworld/timings.json and into the report.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tts_utils.tinyworld import task
from tts_utils.tinyworld.common import DATA, ROOT, RUNS, log

PY = sys.executable
POLICY_LANES = [["tiny-policy-l"], ["tiny-policy-m", "tiny-policy-s", "tiny-policy-xs"]]
EVAL_LANES = [["tiny-policy-l", "tiny-judge"], ["tiny-policy-m", "tiny-policy-s", "tiny-policy-xs"]]
# Training lanes, balanced by the models' single-core training seconds (report.json).
TRAIN_LANES = [["tiny-judge", "tiny-policy-s", "tiny-policy-xs"], ["tiny-policy-l", "tiny-policy-m"]]
# The training code's tables of shapes: each row belongs to its model's fingerprint, not the code's.
SPEC_TABLES = ("POLICIES", "JUDGE")
PRM_LANES = [["tiny-prm-qwen"],
             ["tiny-prm-skywork", "tiny-prm-rlhflow-terse", "tiny-prm-rlhflow-verbose", "tiny-prm-shepherd"]]
# Evaluation has other weights than training: the RLHFlow twins' long chat inputs cost the most
# there, so one goes with tiny-prm-qwen.
PRM_EVAL_LANES = [["tiny-prm-qwen", "tiny-prm-rlhflow-verbose"],
                  ["tiny-prm-skywork", "tiny-prm-rlhflow-terse", "tiny-prm-shepherd"]]
STAGES = ["test-sets", "policies", "evaluate-policies", "prm-sample", "prm-rollout", "prm-train", "evaluate-prms",
          "report"]
# What each stage runs (modules of tts_utils.tinyworld) and which stages' outputs it reads.
STAGE_MODULES = {"test-sets": ["task"], "policies": ["train_policy"], "evaluate-policies": ["evaluate"],
                 "prm-sample": ["train_prm"], "prm-rollout": ["train_prm"], "prm-train": ["train_prm"],
                 "evaluate-prms": ["prm_eval"], "report": ["report"]}
READS = {"test-sets": [], "policies": [], "evaluate-policies": ["test-sets", "policies"],
         "prm-sample": ["test-sets", "policies"], "prm-rollout": ["prm-sample", "policies"],
         "prm-train": ["prm-sample", "prm-rollout", "policies"], "evaluate-prms": ["prm-train", "test-sets"],
         "report": ["evaluate-policies", "evaluate-prms"]}
LOG = "build.log"
RECORD = "stages.json"  # under RUNS: each finished stage's fingerprint


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


def stage_policies(models: list[str] | None = None) -> list[float]:
    """Train ``models`` (default all) in TRAIN_LANES' lanes."""
    lanes = [[n for n in lane if models is None or n in models] for lane in TRAIN_LANES]
    return _lanes([[_m("train_policy", "--only", *lane)] for lane in lanes if lane])


def stage_prm_sample() -> list[float]:
    return _lanes([[_m("train_prm", "sample", "--names", *lane)] for lane in POLICY_LANES])


def stage_prm_rollout() -> list[float]:
    return _lanes([[_m("train_prm", "rollout", "--part", str(i), "--parts", "2")] for i in range(2)])


def stage_prm_train() -> list[float]:
    return _lanes([[_m("train_prm", "train", "--names", *lane)] for lane in PRM_LANES])


def stage_evaluate_policies() -> list[float]:
    return _lanes([[_m("evaluate", "--names", *lane)] for lane in EVAL_LANES])


def stage_evaluate_prms() -> list[float]:
    return _lanes([[_m("prm_eval", "--names", *lane)] for lane in PRM_EVAL_LANES])


def stage_report() -> None:
    from tts_utils.tinyworld.report import write_report

    write_report()


RUN = {"test-sets": stage_test_sets, "policies": stage_policies, "prm-sample": stage_prm_sample,
       "prm-rollout": stage_prm_rollout, "prm-train": stage_prm_train,
       "evaluate-policies": stage_evaluate_policies, "evaluate-prms": stage_evaluate_prms,
       "report": stage_report}


def _module_file(name: str) -> Path | None:
    """The source file of a tts_utils module (a package's __init__), None outside the package."""
    if not name.startswith("tts_utils"):
        return None
    base = ROOT / Path(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.exists():
            return path
    return None


def _imported(path: Path) -> set[str]:
    """The tts_utils modules a file imports (``from pkg import mod`` counts mod when it is one)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names if _module_file(f"{node.module}.{a.name}")}
    return {n for n in names if _module_file(n)}


def code_files(modules: list[str]) -> list[Path]:
    """The files of ``modules`` (of tts_utils.tinyworld) and of every tts_utils module they import,
    transitively."""
    todo = [f"tts_utils.tinyworld.{m}" for m in modules]
    seen: dict[str, Path] = {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen[name] = _module_file(name)
        todo.extend(_imported(seen[name]) - set(seen))
    return sorted(set(seen.values()))


def _without_spec_tables(source: str) -> bytes:
    """A module's syntax tree without its top-level SPEC_TABLES assignments (nor its comments)."""
    tree = ast.parse(source)
    tree.body = [n for n in tree.body if not (isinstance(n, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id in SPEC_TABLES for t in n.targets))]
    return ast.dump(tree).encode()


def code_digest(stage: str, without_specs: bool = False) -> str:
    h = hashlib.sha256()
    for path in code_files(STAGE_MODULES[stage]):
        body = path.read_bytes()
        if without_specs and path.name == "train_policy.py":
            body = _without_spec_tables(body.decode())
        h.update(str(path.relative_to(ROOT)).encode() + b"\0" + body)
    return h.hexdigest()


def model_fingerprints() -> dict[str, str]:
    """Each trained model's fingerprint: the training code without its tables of shapes, and its
    own row."""
    from tts_utils.tinyworld.train_policy import JUDGE, POLICIES

    code = code_digest("policies", without_specs=True)
    return {n: hashlib.sha256(f"{code}\n{n}\n{json.dumps(spec, sort_keys=True)}".encode()).hexdigest()[:20]
            for n, spec in {**POLICIES, **JUDGE}.items()}


def fingerprints() -> dict[str, str]:
    """Each stage's fingerprint: its code's digest and the fingerprints of the stages it reads
    (the policies stage: its models')."""
    out: dict[str, str] = {}
    for st in STAGES:  # in order: a stage reads only earlier ones
        code = json.dumps(model_fingerprints(), sort_keys=True) if st == "policies" else code_digest(st)
        parts = [st, code, *(out[r] for r in READS[st])]
        out[st] = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]
    return out


def stale_stages(current: dict[str, str], recorded: dict[str, str]) -> list[str]:
    """The stages whose fingerprint is not the one recorded when they last finished."""
    return [st for st in STAGES if recorded.get(st) != current[st]]


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--from", dest="start", choices=STAGES, help="run this stage and every later one")
    ap.add_argument("--only", choices=STAGES, help="run just this stage")
    args = ap.parse_args(argv)
    RUNS.mkdir(parents=True, exist_ok=True)
    current, rpath = fingerprints(), RUNS / RECORD
    recorded = json.loads(rpath.read_text()) if rpath.exists() else {}
    if args.only or args.start:
        stages = [args.only] if args.only else STAGES[STAGES.index(args.start):]
    else:
        stages = stale_stages(current, recorded)
        log(f"up to date: {', '.join(s for s in STAGES if s not in stages) or 'nothing'}; "
            f"to run: {', '.join(stages) or 'nothing'}", LOG)
    models = model_fingerprints()
    tpath = RUNS / "timings.json"
    timings = json.loads(tpath.read_text()) if tpath.exists() else {}
    for st in stages:
        t0 = time.time()
        log(f"stage {st} ...", LOG)
        if st == "report":
            tpath.write_text(json.dumps(timings, indent=1))
        stale_models = None
        if st == "policies" and not args.only and not args.start:  # a plain run retrains changed models only
            stale_models = [n for n, f in models.items() if recorded.get(f"model:{n}") != f]
        lane_cpu = RUN[st](stale_models) if st == "policies" else RUN[st]()  # None: ran in this process
        timings[st] = round(time.time() - t0, 1)
        if lane_cpu:
            timings[f"{st}:lane_cpu"] = lane_cpu
        tpath.write_text(json.dumps(timings, indent=1))
        # up to date only if what it read was (--only on a stage whose inputs are stale is not)
        if all(recorded.get(r) == current[r] for r in READS[st]):
            recorded[st] = current[st]
            if st == "policies":
                recorded.update({f"model:{n}": f for n, f in models.items()})
        else:
            recorded.pop(st, None)
        rpath.write_text(json.dumps(recorded, indent=1))
        log(f"stage {st} done in {timings[st]:.0f}s (lane CPU s: {lane_cpu})", LOG)


if __name__ == "__main__":
    main()
