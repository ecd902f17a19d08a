"""Analysis of collected tables: statistics, FLOPs and the figure style.

Owns the statistics of the study (``statistics``: bootstrap intervals and tests, Holm, pass@k,
difficulty bins, votes over stored candidates, the compute-optimal choice, efficiency gain),
inference and training FLOPs (``flops``) and the one figure style (``plots``).

May import ``search.voting`` (the voting rules it applies), ``problems`` and the top-level
utilities; never ``models``' loaders, ``collect`` or ``study``. The statistics are re-exported
here, so ``from tts_utils import analysis`` and ``analysis.<name>`` read them.
"""

from tts_utils.analysis.statistics import (
    DIFFICULTY_ORDER,
    PASS1_METHOD,
    RUN_KEYS,
    accuracy_table,
    add_difficulty,
    bootstrap_ci,
    bootstrap_means,
    bootstrap_p,
    bootstrap_test,
    combine_verdicts,
    compute_optimal,
    difficulty_bins,
    efficiency_gain,
    efficiency_text,
    first_budget_reaching,
    first_k,
    holm,
    paired_bootstrap_test,
    pass1_by_problem,
    pass_at_k,
    pass_at_k_by_problem,
    performance_gain,
    split_of,
    vote_accuracy,
    with_difficulty,
)

__all__ = [
    "accuracy_table", "add_difficulty", "bootstrap_ci", "bootstrap_means", "bootstrap_p", "bootstrap_test",
    "combine_verdicts", "compute_optimal", "difficulty_bins", "DIFFICULTY_ORDER", "efficiency_gain",
    "efficiency_text", "first_budget_reaching", "first_k", "holm", "paired_bootstrap_test",
    "pass1_by_problem", "PASS1_METHOD", "pass_at_k", "pass_at_k_by_problem", "performance_gain",
    "RUN_KEYS", "split_of", "vote_accuracy", "with_difficulty",
]
