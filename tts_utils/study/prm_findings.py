"""F4-F5: what a PRM does to search: longer outputs, and sensitivity to the voting rule."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from tts_utils import analysis
from tts_utils.study.verdicts import N_BOOT, claim_part, equivalence_part, summarize


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
    return table, summarize([part], n_boot)


# --------------------------------------------------------------------------- F5

def voting_table(acc: pd.DataFrame, method: str = "best_of_n", n_boot: int = N_BOOT) -> pd.DataFrame:
    """Accuracy (with CI) of every voting rule per PRM for one method, pooled over budgets."""
    sub = acc[acc["method"] == method]
    return analysis.accuracy_table(sub, ["prm", "rule"], n_boot=n_boot)

def finding_voting(acc: pd.DataFrame, sensitive_prm: str, insensitive_prm: str,
                   method: str = "best_of_n", tolerance: float = 0.02, n_boot: int = N_BOOT) -> tuple[pd.DataFrame, dict]:
    """F5: PRMs differ in sensitivity to the voting rule: for a Skywork-type PRM, PRM-Vote beats
    PRM-Max; a Qwen2.5-Math-PRM-type PRM is insensitive.

    Effect: mean over the three aggregations of (PRM-*-Vote - PRM-*-Max), paired over problems.
    Sensitive PRM: expected > 0. Insensitive PRM: an equivalence test at +-``tolerance`` (the
    paper's Qwen spread is 0.4 points), see ``equivalence_part``.
    """
    sub = acc[acc["method"] == method]
    per = sub.groupby(["prm", "rule", "problem_id"])["correct"].mean().unstack("rule")
    vote = per[[f"prm_{a}_vote" for a in ("min", "last", "avg")]].mean(axis=1)
    mx = per[[f"prm_{a}_max" for a in ("min", "last", "avg")]].mean(axis=1)
    diff = (vote - mx).rename("vote_minus_max")
    parts = [claim_part(f"{sensitive_prm}: PRM-Vote beats PRM-Max",
                   analysis.bootstrap_test(diff.loc[sensitive_prm].to_numpy(), n_boot=n_boot), +1),
             equivalence_part(f"{insensitive_prm}: insensitive to the rule (|Vote - Max| <= {tolerance:.0%})",
                              diff.loc[insensitive_prm].to_numpy(), tolerance, n_boot)]
    return voting_table(acc, method, n_boot), summarize(parts, n_boot)


# --------------------------------------------------------------------------- F6 / F7
