"""Run the study's notebooks with papermill under a parameter profile.

    python -m tts_utils.run_notebooks --profile cpu            # every notebook (make figures)
    python -m tts_utils.run_notebooks --profile smoke --only 03

A profile is ``notebooks/params/<profile>.yaml``::

    defaults:            # given to every notebook whose parameters cell declares the name
      figures_dir: figures
    notebooks:
      01_strategy_vs_prm:  # keyed by notebook file stem
        n_problems: 100

Papermill only warns about parameters a notebook does not declare; a typo would then silently
run the default. Here an unknown name is an error, before anything is executed. Executed copies
go to ``runs/notebooks/<profile>/`` (outside git); notebooks write figures themselves.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import papermill
import yaml

from tts_utils import paths, threads

NOTEBOOK_DIR = paths.NOTEBOOKS_DIR
PARAMS_DIR = NOTEBOOK_DIR / "params"
RUNS_DIR = paths.RUNS_DIR / "notebooks"


class ProfileError(ValueError):
    pass


def list_notebooks(only: list[str] | None = None) -> list[Path]:
    notebooks = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if only:
        picked = [nb for nb in notebooks if any(nb.stem.startswith(o) for o in only)]
        missing = [o for o in only if not any(nb.stem.startswith(o) for nb in notebooks)]
        if missing:
            raise ProfileError(f"no notebook matches {missing}; have: {[nb.stem for nb in notebooks]}")
        return picked
    return notebooks


def load_profile(profile: str) -> dict:
    path = PARAMS_DIR / f"{profile}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in PARAMS_DIR.glob("*.yaml"))
        raise ProfileError(f"unknown profile {profile!r}; known: {', '.join(known)}")
    data = yaml.safe_load(path.read_text()) or {}
    extra = set(data) - {"defaults", "notebooks"}
    if extra:
        raise ProfileError(f"{path}: unknown top-level key(s) {sorted(extra)}; expected 'defaults' and 'notebooks'")
    return {"defaults": data.get("defaults") or {}, "notebooks": data.get("notebooks") or {}, "path": path}


def declared_parameters(notebook: Path) -> set[str]:
    return set(papermill.inspect_notebook(str(notebook)))


def resolve_parameters(profile: dict, notebooks: list[Path], all_notebooks: list[Path]) -> dict[Path, dict]:
    """Parameters per notebook; raises ProfileError for any name no notebook declares."""
    declared = {nb: declared_parameters(nb) for nb in all_notebooks}
    path = profile["path"]
    stems = {nb.stem: nb for nb in all_notebooks}
    unknown_nb = set(profile["notebooks"]) - set(stems)
    if unknown_nb:
        raise ProfileError(f"{path}: section(s) for unknown notebook(s) {sorted(unknown_nb)}")
    all_declared = set().union(*declared.values()) if declared else set()
    unused_defaults = set(profile["defaults"]) - all_declared
    if unused_defaults:
        raise ProfileError(f"{path}: default(s) {sorted(unused_defaults)} are declared by no notebook")
    resolved = {}
    for nb in notebooks:
        own = profile["notebooks"].get(nb.stem) or {}
        bad = set(own) - declared[nb]
        if bad:
            raise ProfileError(f"{path}: {nb.stem} has no parameter(s) {sorted(bad)}; "
                               f"it declares {sorted(declared[nb])}")
        params = {k: v for k, v in profile["defaults"].items() if k in declared[nb]}
        params.update(own)
        resolved[nb] = params
    return resolved


def run(profile_name: str, only: list[str] | None = None, log_output: bool = False) -> list[Path]:
    profile = load_profile(profile_name)
    all_nbs = list_notebooks()
    notebooks = list_notebooks(only)
    params = resolve_parameters(profile, notebooks, all_nbs)  # fails before anything runs
    out_dir = RUNS_DIR / profile_name
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = []
    for nb in notebooks:
        out = out_dir / nb.name
        start = time.perf_counter()
        print(f"[{profile_name}] {nb.name} ...", flush=True)
        papermill.execute_notebook(str(nb), str(out), parameters=params[nb], kernel_name="python3",
                                   cwd=str(paths.REPO_ROOT), progress_bar=False, log_output=log_output)
        print(f"[{profile_name}] {nb.name} done in {time.perf_counter() - start:.1f} s", flush=True)
        outputs.append(out)
    return outputs


README_START, README_END = "<!-- findings:start -->", "<!-- findings:end -->"


def findings_markdown(figures_dir: Path, relative_to: Path = paths.REPO_ROOT) -> str:
    """The README's findings table, built from the verdict files the notebooks wrote."""
    import json

    lines = ["| finding | paper's claim | verdict (computed) | effects [95% CI] | figure |",
             "| --- | --- | --- | --- | --- |"]
    for path in sorted(Path(figures_dir).glob("*.verdict.json")):
        v = json.loads(path.read_text())
        effects = "<br>".join(f"{p['claim']}: {p['effect']:+.3f} [{p['lo']:+.3f}, {p['hi']:+.3f}] {p['verdict']}"
                              for p in v["parts"]).replace("|", "\\|")  # a "|" would end the cell
        rel = Path(os.path.relpath(figures_dir, relative_to))
        lines.append(f"| {v['finding']} | {v['title']} | **{v['verdict']}** | {effects} | "
                     f"[png]({rel / (v['figure'] + '.png')}) |")
    return "\n".join(lines)


def replace_section(readme: Path, start: str, end: str, markdown: str) -> bool:
    """Put ``markdown`` between the ``start`` and ``end`` markers of a file; False if it has none."""
    text = readme.read_text()
    if start not in text or end not in text:
        return False
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{markdown}\n{end}{tail}")
    return True


def update_readme(figures_dir: Path, readme: Path = paths.README) -> bool:
    """Replace the findings table between the README's markers; False if there are no markers."""
    return replace_section(readme, README_START, README_END, findings_markdown(figures_dir, readme.parent))


def _default_workers(profile: dict) -> int:
    """Several worker processes only where they pay: tiny models on CPU (one process per GPU or
    server otherwise)."""
    if os.environ.get(threads.WORKERS_ENV):
        return threads.study_workers()
    if profile["defaults"].get("backend", "transformers") != "transformers":
        return 1
    import torch

    return 1 if torch.cuda.is_available() else threads.default_workers()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="cpu", help="notebooks/params/<profile>.yaml (smoke, cpu, paper)")
    ap.add_argument("--only", nargs="*", help="notebook number(s) or name prefix(es), e.g. 00 03")
    ap.add_argument("--log-output", action="store_true", help="stream notebook output to the terminal")
    ap.add_argument("--readme", action="store_true",
                    help="afterwards, rewrite README.md's findings table from the verdicts in figures/")
    ap.add_argument("--workers", type=int, default=None,
                    help="processes per grid (TTS_WORKERS for the notebooks; default: TTS_WORKERS if set, else one "
                         "per TTS_THREADS cores for a CPU transformers profile, else 1)")
    args = ap.parse_args(argv)
    try:
        workers = args.workers or _default_workers(load_profile(args.profile))
        if workers < 1:
            raise ProfileError(f"--workers must be >= 1, got {workers}")
        os.environ[threads.WORKERS_ENV] = str(workers)  # the notebooks' kernels inherit it
        run(args.profile, args.only, args.log_output)
    except (ProfileError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.readme and update_readme(paths.FIGURES_DIR):
        print("README.md findings table updated from figures/*.verdict.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
