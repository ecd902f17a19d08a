"""How a finding's verdict is reached and written (docs/DESIGN.md, "Findings").

The statistics are fixed before any outcome is seen. Each finding states its own rule (what
its parts measure and over which budgets and seeds a problem's values are averaged), and
``verdict_rule`` the statistics every finding shares; the two together are the verdict's ``rule``
text, which every notebook prints beside the verdict:

* effects are paired over problems (e.g. search minus Best-of-N on the same problems) and
  bootstrapped over problems;
* every split is pre-registered: weak/strong PRMs and small policies are named in the profile,
  small/large policies come from the registry's sizes, easy/hard from the independent pass@1
  sample set with the paper's fixed thresholds; every choice made from outcomes (which search
  method, which compute-optimal configuration) is made on one half of the problems and judged
  on the other (cross-fitting, ``analysis.split_of``);
* a finding's parts are one family: Holm at family-wise 5% decides which parts agree or
  disagree, and the finding agrees only if all of them do.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import pandas as pd

from tts_utils import analysis

# --------------------------------------------------------------------------- statistics

N_BOOT = 2000
FAMILY_ALPHA = 0.05


def verdict_rule(n_parts: int, n_boot: int = N_BOOT, alpha: float = FAMILY_ALPHA) -> str:
    """The pre-registered statistics every finding's verdict follows, in words."""
    return (f"bootstrap over problems ({n_boot} resamples); each part's two-sided bootstrap p-value; Holm "
            f"across the {n_parts} part(s) at family-wise {alpha:.0%}: a part agrees or disagrees only if Holm "
            "rejects its null (and, where a part says so, its robustness check holds); the finding agrees if "
            "every part agrees, disagrees if any part disagrees, else inconclusive")


def problem_means(acc: pd.DataFrame, keys: Sequence[str]) -> pd.Series:
    """Each problem's correctness averaged over seeds and budgets, indexed by keys + problem_id."""
    return acc.groupby([*keys, "problem_id"], observed=True)["correct"].mean()

def claim_part(claim: str, stats: Sequence[float], sign: int, detail: str = "") -> dict:
    """One part of a finding: an effect (mean, lo, hi, p) and the sign the paper claims for it."""
    mean, lo, hi, p = (float(x) for x in stats)
    direction = None if math.isnan(mean) or mean == 0 else ("agrees" if sign * mean > 0 else "disagrees")
    return {"claim": claim, "effect": mean, "lo": lo, "hi": hi, "p": p, "direction": direction, "detail": detail}


def summarize(parts: list[dict], n_boot: int = N_BOOT, alpha: float = FAMILY_ALPHA, rule: str = "") -> dict:
    """Holm across the parts, then one verdict (see ``verdict_rule``). ``rule`` is the finding's own
    rule in words (what each part measures), written before the statistics they share. A part
    whose ``robust`` is False (a check the finding states, e.g. that no single PRM carries a
    slope) cannot agree or disagree: it stays inconclusive whatever its p-value."""
    rejected = analysis.holm([p["p"] for p in parts], alpha)
    out = []
    for p, rej in zip(parts, rejected, strict=True):
        p = dict(p)
        direction = p.pop("direction")
        p["verdict"] = direction if rej and direction and p.get("robust", True) else "inconclusive"
        out.append(p)
    shared = verdict_rule(len(out), n_boot, alpha)
    return {"verdict": analysis.combine_verdicts([p["verdict"] for p in out]), "parts": out,
            "rule": f"{rule.rstrip('.')}. {shared[0].upper()}{shared[1:]}" if rule else shared}

def verdict_markdown(summary: dict, title: str) -> str:
    """A markdown block stating the computed verdict, the rule it follows, and each part's effect
    with its 95% CI and p-value."""
    rule = summary.get("rule") or "each part's 95% bootstrap interval against the claimed sign (no family-wise rule)"
    lines = [f"**{title}: {summary['verdict'].upper()}**", "", f"Rule (pre-registered): {rule}.", ""]
    for p in summary["parts"]:
        extra = f"; {p['detail']}" if p.get("detail") else ""
        pval = f", p = {p['p']:.3f}" if "p" in p else ""
        lines.append(f"* {p['claim']}: effect {p['effect']:+.3f} [{p['lo']:+.3f}, {p['hi']:+.3f}]{pval} -> "
                     f"{p['verdict']}{extra}")
    return "\n".join(lines)


def save_verdict(summary: dict, finding: str, title: str, figures_dir: str, figure: str) -> None:
    """Write the verdict next to the figure (``<figure>.verdict.json``) so the README's findings
    table is generated from the data (tts_utils.run_notebooks --readme), never typed by hand."""
    from pathlib import Path

    doc = {"finding": finding, "title": title, "figure": figure, "verdict": summary["verdict"],
           "rule": summary.get("rule", ""),
           "parts": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in p.items()}
                     for p in summary["parts"]]}
    path = Path(figures_dir) / f"{figure}.verdict.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")
