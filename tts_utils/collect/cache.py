"""Work units, their cache keys and chunk files, and the merge of chunks into the final tables.

A unit's key hashes everything that changes its result. Its two chunk files are written
atomically (to ``NAME.tmp-HOST-PID``, then renamed), then a marker ``KEY.done.json`` holding the
key, both files' SHA-256 and the budgets the files hold: a unit is done only when its marker names
it, both files match their checksums and it holds every budget the grid asks of it, so an emptied,
truncated or swapped chunk is found and recomputed (with a warning) instead of being read. A
unit's key leaves its budget list out (grids with different budgets share its run at N_run), so a
grid that asks a unit for a budget its chunk lacks recomputes it for both grids' budgets. The manifest records the plan so that ``merge`` can run later
(and from another process) in the fixed table order; a running grid merges its own plan into
tables of its own (``grids/GRID/``, kept for reruns, with ``tables.json``: the grid, the tables'
SHA-256 and a digest of the markers they were merged from) and copies them to the directory's
``candidates.parquet`` and ``runs.parquet``. A grid holds a lock while it runs: a different grid
aimed at the same directory waits for it (``grid_lock``), so that notebooks run side by side
never compute a shared unit twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from tts_utils.collect.config import GridConfig, import_loader, policy_search
from tts_utils.problems.datasets import Problem
from tts_utils.search import SearchResult, get_method

# Bump when a change to the search or grading code changes results: it invalidates the cache.
# 2: beam search ranks finished paths with live ones (finished_paths); 3: PRMs in float64 on CPU;
# 4: a chunk file holds the rows of every budget of its unit (derived when written, by
# search.derive), not only N_run's; 5: the Skywork-format sigmoid in float64 (its float32 sigmoid
# moved a reward's last bit with the batch);
# 6: beam search and DVTS keep the paper's N/M paths (SearchConfig.finished_paths 'slot'); a chunk's done-marker lists the budgets it holds
CODE_VERSION = "collect-6"

CANDIDATE_COLUMNS = ["dataset", "policy", "prm", "method", "n", "seed", "problem_id", "problem_index", "level",
                     "candidate", "subtree", "lineage", "steps", "rewards", "step_tokens", "num_steps",
                     "policy_tokens", "prm_tokens", "finish_reason", "answer", "correct"]
RUN_COLUMNS = ["dataset", "policy", "prm", "method", "n", "seed", "problem_id", "problem_index", "level", "gold",
               "num_candidates", "policy_tokens", "prm_tokens", "n_run", "wall_s"]


@dataclass(frozen=True)
class Unit:
    """One cacheable piece of work: one method run on one chunk of problems."""

    dataset: str
    policy: str
    prm: str          # "" for methods without a PRM
    method: str
    n_run: int        # the budget actually run
    budgets: tuple[int, ...]  # the budgets written from it (derived below n_run)
    seed: int
    chunk: int
    problem_ids: tuple[str, ...]
    key: str

    @property
    def files(self) -> tuple[str, str]:
        return f"{self.key}.candidates.parquet", f"{self.key}.runs.parquet"

    @property
    def marker(self) -> str:
        return f"{self.key}.done.json"

    def describe(self) -> str:
        return (f"{self.method} N={self.n_run} seed={self.seed} of {self.policy}{'/' + self.prm if self.prm else ''} "
                f"on chunk {self.chunk} of {self.dataset}")


def _file_digest(path: Path, h) -> None:
    """Whole content of small files; size + first and last 16 MiB of big ones (weights of 7B+
    models would take minutes to hash, and a changed checkpoint changes its size or its ends)."""
    size = path.stat().st_size
    h.update(f"{path.name}:{size}".encode())
    chunk = 16 << 20
    with path.open("rb") as f:
        if size <= 4 * chunk:
            h.update(f.read())
        else:
            h.update(f.read(chunk))
            f.seek(size - chunk)
            h.update(f.read(chunk))


def model_fingerprint(cfg: GridConfig, kind: str, name: str) -> str:
    """What identifies a model's weights: file digests for local weights, the hub id otherwise."""
    if cfg.loader is not None:
        fn = import_loader(cfg.loader)
        custom = getattr(fn, "fingerprint", None)
        return f"{cfg.loader}|{name}|{custom(kind, name) if custom else ''}"
    from tts_utils.models.catalog import get_model

    spec = get_model(name, kind=kind)
    desc = f"{spec.name}|{spec.family}|{spec.prm_format}|"
    local = spec.local_path() if not Path(spec.source).exists() else Path(spec.source)
    if local.is_dir():
        h = hashlib.sha256(desc.encode())
        for f in sorted(p for p in local.rglob("*") if p.is_file()):
            _file_digest(f, h)
        return h.hexdigest()
    # a hub id: revisions are not pinned, so a new upload on the hub is not detected
    return desc + "hub:" + spec.source


def _problems_digest(problems: list[Problem]) -> str:
    h = hashlib.sha256()
    for p in problems:
        h.update(json.dumps([p.id, p.problem, p.answer], ensure_ascii=False).encode())
    return h.hexdigest()


def off_cpu(cfg: GridConfig) -> dict[str, str]:
    """Which registry-loaded transformers models of the grid run off the CPU, and where: a GPU runs
    them in bf16, whose samples and rewards differ from the CPU's float ones, so a unit's key holds
    it and a cache never mixes the two. Empty on the CPU, so that CPU keys stay what they were."""
    if cfg.loader is not None:
        return {}
    from tts_utils.models.catalog import default_device

    here = default_device()
    policy = str(cfg.backend_options.get("device") or here)
    out = {}
    if cfg.backend == "transformers" and policy != "cpu":
        out["policy"] = policy
    if "device" not in cfg.prm_options and here != "cpu":
        out["prm"] = here  # a device named in prm_options is in the key already
    return out


def plan(cfg: GridConfig, data: dict[str, list[Problem]], fingerprints: dict[tuple[str, str], str]) -> list[Unit]:
    """Every work unit of the grid, in the final table order."""
    units = []
    devices = off_cpu(cfg)
    for ds in cfg.datasets:
        problems = data[ds]
        chunks = [problems[i:i + cfg.chunk_size] for i in range(0, len(problems), cfg.chunk_size)]
        for pol in cfg.policies:
            search = asdict(policy_search(cfg, pol))
            for prm in [""] + cfg.prms:
                for method in cfg.methods:
                    spec = get_method(method)
                    if spec.uses_prm != bool(prm):
                        continue
                    seeds = cfg.seeds
                    if spec.budgets == "one":
                        runs = [(1, (1,))]
                    elif spec.budgets == "pass1":
                        runs, seeds = [(cfg.pass1_samples, (cfg.pass1_samples,))], [cfg.pass1_seed]
                    elif spec.derivable:  # one run at N_max, smaller N derived from it
                        runs = [(cfg.n[-1], tuple(cfg.n))]
                    else:
                        runs = [(n, (n,)) for n in cfg.n]
                    for n_run, budgets in runs:
                        for seed in seeds:
                            for c, chunk in enumerate(chunks):
                                ident = {
                                    "code": CODE_VERSION, "dataset": ds, "problems": _problems_digest(chunk),
                                    "policy": pol, "policy_fp": fingerprints["policy", pol],
                                    "prm": prm, "prm_fp": fingerprints["prm", prm] if prm else "",
                                    "method": method, "n_run": n_run, "seed": seed, "search": search,
                                    "backend": cfg.backend,
                                }
                                if cfg.prm_options and prm:
                                    # a PRM's dtype changes its rewards; only when set, so that the
                                    # keys of grids without it stay what they were
                                    ident["prm_options"] = cfg.prm_options
                                if "policy" in devices:
                                    ident["policy_device"] = devices["policy"]
                                if prm and "prm" in devices:
                                    ident["prm_device"] = devices["prm"]
                                key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]
                                units.append(Unit(ds, pol, prm, method, n_run, budgets, seed, c,
                                                  tuple(p.id for p in chunk), key))
    return units


# ---------------------------------------------------------------------------------------- tables

def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())


def _tmp_path(path: Path) -> Path:
    # host and pid: a killed writer's leftovers can be told from a live one's, even on a shared
    # file system where shards on other machines write into the same directory
    return path.with_name(f"{path.name}.tmp-{_host()}-{os.getpid()}")


def atomic_parquet(df: pd.DataFrame, path: Path) -> None:
    tmp = _tmp_path(path)
    df.to_parquet(tmp, index=False)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _atomic_text(text: str, path: Path) -> None:
    tmp = _tmp_path(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete the temporary files that killed processes of this host left in ``directory``."""
    removed = []
    pattern = re.compile(rf"\.tmp-{re.escape(_host())}-(\d+)$")
    for path in directory.glob("*.tmp-*"):
        m = pattern.search(path.name)
        if m is None or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
            continue  # its writer is alive
        except ProcessLookupError:
            pass
        except PermissionError:  # alive, another user's
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_unit(unit: Unit, cands: pd.DataFrame, runs: pd.DataFrame, chunks: Path) -> None:
    """Both chunk files, then the marker that makes the unit count as done (for ``unit.budgets``)."""
    atomic_parquet(runs, chunks / unit.files[1])
    atomic_parquet(cands, chunks / unit.files[0])
    marker = {"key": unit.key, "sha256": {name: _sha256(chunks / name) for name in unit.files},
              "budgets": sorted(unit.budgets)}
    _atomic_text(json.dumps(marker), chunks / unit.marker)


def unit_state(unit: Unit, out: Path) -> tuple[str | None, tuple[int, ...]]:
    """(damage, budgets held) of ``unit``'s chunk in ``out``: damage is None when its marker names
    this key and both files match their checksums, "missing" when nothing of it is there, otherwise
    what is wrong; the budgets are those the marker lists (none when damaged)."""
    chunks = out / "chunks"
    marker = chunks / unit.marker
    if not marker.exists():
        return ("missing" if not any((chunks / f).exists() for f in unit.files) else "no done-marker"), ()
    try:
        doc = json.loads(marker.read_text())
        sums = doc["sha256"]
        held = tuple(int(n) for n in doc.get("budgets", ()))  # a marker without them holds none
    except (ValueError, KeyError, TypeError):
        return f"{unit.marker} is unreadable", ()
    if doc.get("key") != unit.key:
        return f"{unit.marker} belongs to unit {doc.get('key')!r}", ()
    for name in unit.files:
        path = chunks / name
        if not path.exists():
            return f"{name} is missing", ()
        if _sha256(path) != sums.get(name):
            return f"{name} does not match its checksum (emptied, truncated or replaced)", ()
    return None, held


def unit_damage(unit: Unit, out: Path) -> str | None:
    """None when ``unit`` is done in ``out`` (intact, and holding every budget in ``unit.budgets``);
    "missing" when nothing of it is there; otherwise what is wrong with what is there."""
    damage, held = unit_state(unit, out)
    lacking = [n for n in unit.budgets if n not in held]
    if damage is None and lacking:
        return f"it holds N = {list(held)}, not N = {lacking}"
    return damage


def grid_id(doc: dict) -> str:
    """A digest of a grid's plan (its manifest)."""
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


@contextlib.contextmanager
def grid_lock(out: Path, grid: str, poll_s: float = 0.5):
    """Hold ``out`` for the grid ``grid``: processes of the same grid (shards) share it; a
    different grid's process waits until none of them runs (saying so once on stderr). Two grids
    at once would compute the units they share twice, and each overwrite the other's manifest."""
    import fcntl

    locks = out / "locks"
    locks.mkdir(exist_ok=True)
    waited = False
    with open(locks / f"{grid}.lock", "a") as own, open(locks / "directory.mutex", "a") as mutex:
        while True:
            # Checking under the directory's mutex: of two grids starting at once, one goes first.
            fcntl.flock(mutex, fcntl.LOCK_EX)
            try:
                fcntl.flock(own, fcntl.LOCK_SH)
                busy = any(_held(other) for other in locks.glob("*.lock") if other.stem != grid)
                if busy:
                    fcntl.flock(own, fcntl.LOCK_UN)
            finally:
                fcntl.flock(mutex, fcntl.LOCK_UN)
            if not busy:
                break
            if not waited:
                print(f"collect: another grid is running into {out}; waiting for it", file=sys.stderr, flush=True)
                waited = True
            time.sleep(poll_s)
        yield


def _held(lock: Path) -> bool:
    """Whether a process holds ``lock`` (a running grid's lock file)."""
    import fcntl

    with open(lock, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def unit_frames(unit: Unit, results: list[SearchResult], problems: list[Problem], index: dict[str, int],
                wall_s: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A unit's chunk tables: the rows of every budget it covers (``results``: one per budget, in
    ``unit.budgets`` order). ``wall_s`` is the unit's measured time, divided among its problems
    and scaled by N / N_run for a derived budget."""
    base = {"dataset": unit.dataset, "policy": unit.policy, "prm": unit.prm, "method": unit.method,
            "seed": unit.seed}
    level = {p.id: p.level for p in problems}
    gold = {p.id: p.answer for p in problems}
    per_problem = wall_s / max(len(problems), 1)
    cand_rows, run_rows = [], []
    for result in results:
        n = result.n
        counts = {r.problem_id: 0 for r in result.runs}
        for c in result.candidates:
            counts[c.problem_id] += 1
            cand_rows.append({
                **base, "n": n, "problem_id": c.problem_id, "problem_index": index[c.problem_id],
                "level": level[c.problem_id], "candidate": c.index, "subtree": c.subtree, "lineage": c.lineage,
                "steps": c.steps, "rewards": c.rewards, "step_tokens": c.step_tokens, "num_steps": len(c.steps),
                "policy_tokens": c.policy_tokens, "prm_tokens": c.prm_tokens, "finish_reason": c.finish_reason,
                "answer": c.answer, "correct": bool(c.correct)})
        run_rows.extend({
            **base, "n": n, "problem_id": r.problem_id, "problem_index": index[r.problem_id],
            "level": level[r.problem_id], "gold": gold[r.problem_id], "num_candidates": counts[r.problem_id],
            "policy_tokens": r.policy_tokens, "prm_tokens": r.prm_tokens, "n_run": unit.n_run,
            "wall_s": per_problem * n / unit.n_run} for r in result.runs)
    return (pd.DataFrame(cand_rows, columns=CANDIDATE_COLUMNS), pd.DataFrame(run_rows, columns=RUN_COLUMNS))


def _manifest_path(out: Path) -> Path:
    return out / "manifest.json"


def _seed_order(cfg: GridConfig) -> list[int]:
    return cfg.seeds + ([cfg.pass1_seed] if cfg.pass1_seed not in cfg.seeds else [])


def manifest(cfg: GridConfig, units: list[Unit]) -> dict:
    return {"code_version": CODE_VERSION,
            "order": {"dataset": cfg.datasets, "policy": cfg.policies, "prm": [""] + cfg.prms,
                      "method": cfg.methods, "seed": _seed_order(cfg)},
            "units": [asdict(u) for u in units]}


def write_manifest(out: Path, doc: dict) -> None:
    _atomic_text(json.dumps(doc, indent=1), _manifest_path(out))


def merge(out: str | Path, *more: str | Path) -> dict[str, Path]:
    """Join the chunk files of the grid in ``out`` (and of shards copied elsewhere, ``more``) into
    ``out/candidates.parquet`` and ``out/runs.parquet``. Errors if any chunk is missing or damaged."""
    out = Path(out)
    mpath = _manifest_path(out)
    if not mpath.exists():
        raise FileNotFoundError(f"{mpath} not found: run the grid (python -m tts_utils.collect CONFIG) first")
    return merge_plan(json.loads(mpath.read_text()), out, *more)


def merge_plan(doc: dict, out: str | Path, *more: str | Path) -> dict[str, Path]:
    """``merge`` of the plan ``doc`` (a manifest), whatever manifest ``out`` holds now. Returns the
    plan's own tables (``out/grids/GRID/``), which a later grid into ``out`` leaves alone; ``out``'s
    ``candidates.parquet`` and ``runs.parquet`` get copies."""
    out = Path(out)
    dirs = [out, *map(Path, more)]
    units = [Unit(**{**u, "budgets": tuple(u["budgets"]), "problem_ids": tuple(u["problem_ids"])})
             for u in doc["units"]]
    where, damage = {}, {}
    for u in units:
        found = {d: unit_damage(u, d) for d in dirs}
        where[u] = next((d for d, bad in found.items() if bad is None), None)
        damage[u] = next((bad for bad in found.values() if bad not in (None, "missing")), None)
    missing = [u for u in units if where[u] is None]
    if missing:
        example = missing[0]
        damaged = [u for u in missing if damage[u]]
        note = (f"; {len(damaged)} of them damaged (e.g. {damaged[0].describe()}: {damage[damaged[0]]}): "
                "rerun the grid to recompute them" if damaged else "")
        raise FileNotFoundError(
            f"{len(missing)} of {len(units)} work units are not done (e.g. {example.describe()}){note}; "
            "run the missing shards first")
    gid = grid_id(doc)
    own = out / "grids" / gid
    paths = {"candidates": out / "candidates.parquet", "runs": out / "runs.parquet"}
    mine = {k: own / p.name for k, p in paths.items()}
    # A rerun of a merged plan reads one table instead of every chunk (most of a cached notebook's
    # start-up), when the tables are this grid's, intact, and merged from the chunks there now.
    stamp = {"grid": gid, "chunks": _markers_digest(units, where)}
    stamp_path = own / "tables.json"
    if not more and stamp_path.exists():
        try:
            old = json.loads(stamp_path.read_text())
        except ValueError:
            old = None
        old = old if isinstance(old, dict) else {}  # an unreadable stamp vouches for nothing
        tables_ok = old.get("grid") == gid and all(
            p.exists() and _sha256(p) == (old.get("sha256") or {}).get(p.name) for p in mine.values())
        if tables_ok and old.get("chunks") == stamp["chunks"]:
            for k, p in mine.items():
                _atomic_copy(p, paths[k])
            return mine
        if not tables_ok:  # a chunk recomputed since is expected; a table that changed is not
            print(f"collect: warning: the merged tables in {own} do not match their checksums (replaced or "
                  "damaged); merging them again", file=sys.stderr, flush=True)
    order = doc["order"]
    rank = {k: {v: i for i, v in enumerate(vals)} for k, vals in order.items()}
    pieces = []
    for u in units:
        cands = pd.read_parquet(where[u] / "chunks" / u.files[0])
        runs = pd.read_parquet(where[u] / "chunks" / u.files[1])
        for n in u.budgets:
            c = cands[cands["n"] == n].reset_index(drop=True)
            r = runs[runs["n"] == n].reset_index(drop=True)
            if len(r) != len(u.problem_ids):  # a table without a budget's rows must never pass as whole
                raise ValueError(f"the chunk of {u.describe()} holds {len(r)} rows of N = {n} for "
                                 f"{len(u.problem_ids)} problems; rerun the grid to recompute it")
            sort_key = (rank["dataset"][u.dataset], rank["policy"][u.policy], rank["prm"][u.prm],
                        rank["method"][u.method], n, rank["seed"][u.seed], u.chunk)
            pieces.append((sort_key, c, r))
    pieces.sort(key=lambda x: x[0])
    cand_df = pd.concat([c for _, c, _ in pieces], ignore_index=True) if pieces else \
        pd.DataFrame(columns=CANDIDATE_COLUMNS)
    runs_df = pd.concat([r for _, _, r in pieces], ignore_index=True) if pieces else \
        pd.DataFrame(columns=RUN_COLUMNS)
    own.mkdir(parents=True, exist_ok=True)
    atomic_parquet(cand_df, mine["candidates"])
    atomic_parquet(runs_df, mine["runs"])
    stamp["sha256"] = {p.name: _sha256(p) for p in mine.values()}
    _atomic_text(json.dumps(stamp), stamp_path)
    for k, p in mine.items():
        _atomic_copy(p, paths[k])
    return mine


def _markers_digest(units: list[Unit], where: dict) -> str:
    """A digest of the done-markers of ``units`` (each holds its files' checksums): it changes when
    any chunk is recomputed."""
    h = hashlib.sha256()
    for u in units:
        h.update((where[u] / "chunks" / u.marker).read_bytes())
    return h.hexdigest()


def _atomic_copy(src: Path, dst: Path) -> None:
    tmp = _tmp_path(dst)
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def load_results(out: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(candidates, runs) tables of a finished grid, for notebooks."""
    out = Path(out)
    paths = [out / "candidates.parquet", out / "runs.parquet"]
    for p in paths:
        if not p.exists():
            raise FileNotFoundError(f"{p} not found: run the grid, or `python -m tts_utils.collect merge {out}`")
    return pd.read_parquet(paths[0]), pd.read_parquet(paths[1])
