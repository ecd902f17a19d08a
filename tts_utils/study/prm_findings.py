"""F4-F5: what a PRM does to search: longer outputs, and sensitivity to the voting rule."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from tts_utils import analysis
from tts_utils.study.verdicts import N_BOOT, claim_part, summarize

F4_RULE = ("F4: one part: per problem, the log of the ratio of mean tokens per candidate under the search "
           "method (long-trained PRM / short-trained PRM), averaged over policies, budgets N and seeds; "
           "expected > 0")


def finding_length_bias(cands: pd.DataFrame, short_prm: str, long_prm: str,
                        method: str = "beam_search", n_boot: int = N_BOOT) -> tuple[pd.DataFrame, dict]:
    """F4: a PRM trained on longer solutions makes search produce longer outputs.

    Effect: log of the ratio of mean tokens per candidate (long-trained PRM / short-trained PRM)
    under ``method``, averaged per problem over policies, budgets and seeds, then bootstrapped
    over problems (the unit: rows of one problem are not independent); expected > 0. Shown as the
    ratio; the paper's RLHFlow-Deepseek / RLHFlow-Mistral ratio is about 2.
    """
    c = cands[(cands["method"] == method) & cands["prm"].isin([short_prm, long_prm])].copy()
    c["chars"] = c["steps"].map(lambda s: sum(len(x) for x in s))
    per = (c.groupby(["prm", "policy", "n", "seed", "problem_id"])[["policy_tokens", "chars", "num_steps"]].mean())
    table = per.groupby(["prm", "policy"]).mean().reset_index()
    tok = per["policy_tokens"].unstack("prm").dropna()
    log_ratio = (np.log(tok[long_prm]) - np.log(tok[short_prm])).groupby("problem_id").mean()
    mean, lo, hi, p = analysis.bootstrap_test(log_ratio.to_numpy(), n_boot=n_boot)
    part = claim_part(f"{long_prm} makes {method} longer than {short_prm}", (mean, lo, hi, p), +1,
                 f"ratio of tokens per candidate {math.exp(mean):.2f} [{math.exp(lo):.2f}, {math.exp(hi):.2f}]"
                 f" over {len(log_ratio)} problems")
    part["effect_name"] = "log ratio"
    return table, summarize([part], n_boot, rule=F4_RULE)


# --------------------------------------------------------------------------- F5

def voting_table(acc: pd.DataFrame, method: str = "best_of_n", n_boot: int = N_BOOT) -> pd.DataFrame:
    """Accuracy (with CI) of every voting rule per PRM for one method, pooled over budgets."""
    sub = acc[acc["method"] == method]
    return analysis.accuracy_table(sub, ["prm", "rule"], n_boot=n_boot)

F5_RULE = ("F5: one part, the contrast the paper claims: per problem, (PRM-Vote - PRM-Max, averaged over the "
           "Min, Last and Avg aggregations and the grid's budgets N and seeds) of the sensitive PRM minus the "
           "same of the insensitive PRM, both named in the profile before any outcome; expected > 0. Each "
           "PRM's own Vote - Max is reported beside it, not tested")


def vote_minus_max(acc: pd.DataFrame, method: str = "best_of_n") -> pd.DataFrame:
    """Problems x PRMs: PRM-Vote minus PRM-Max, averaged over the three aggregations, budgets and seeds."""
    sub = acc[acc["method"] == method]
    per = sub.groupby(["prm", "rule", "problem_id"])["correct"].mean().unstack("rule")
    vote = per[[f"prm_{a}_vote" for a in ("min", "last", "avg")]].mean(axis=1)
    mx = per[[f"prm_{a}_max" for a in ("min", "last", "avg")]].mean(axis=1)
    return (vote - mx).unstack("prm")


def finding_voting(acc: pd.DataFrame, sensitive_prm: str, insensitive_prm: str,
                   method: str = "best_of_n", n_boot: int = N_BOOT) -> tuple[pd.DataFrame, dict]:
    """F5: PRMs differ in sensitivity to the voting rule: PRM-Vote gains more over PRM-Max with a
    Skywork-type PRM than with a Qwen2.5-Math-PRM-type one (the paper's Table 2: Skywork's mean
    Vote - Max is 2.4 points, Qwen's 0.4).

    One part: the paired difference in (Vote - Max) between the two pre-registered PRMs, over the
    problems both scored; expected > 0. Returns the voting table (every rule's accuracy per PRM).
    """
    diff = vote_minus_max(acc, method)
    missing = [p for p in (sensitive_prm, insensitive_prm) if p not in diff.columns]
    if missing:
        raise KeyError(f"F5: no {method} votes for PRM(s) {missing}")
    both = diff[[sensitive_prm, insensitive_prm]].dropna()
    each = {p: analysis.bootstrap_ci(both[p].to_numpy()) for p in (sensitive_prm, insensitive_prm)}
    detail = "; ".join(f"{p}: Vote - Max {m:+.3f} [{lo:+.3f}, {hi:+.3f}]" for p, (m, lo, hi) in each.items())
    part = claim_part(f"{sensitive_prm} gains more from PRM-Vote over PRM-Max than {insensitive_prm}",
                      analysis.paired_bootstrap_test(both[sensitive_prm], both[insensitive_prm], n_boot=n_boot), +1,
                      f"{len(both)} problems; {detail}")
    return voting_table(acc, method, n_boot), summarize([part], n_boot, rule=F5_RULE)
# --------------------------------------------------------------------------- F6 / F7
