"""The study: the paper's findings asked of a grid, one module per family of findings.

Owns the grid every finding notebook collects (``grid``), how a verdict is reached and written
(``verdicts``), the findings F1-F3 (``strategy``), F4-F5 (``prm_findings``), F6-F7 and the tables
(``compute_optimal``), the paper's other figures (``paper_coverage`` with the paper's numbers in
``paper_numbers``, ``prm_failures``), real model outputs read as candidates (``importers``),
the notebooks' parameter checks (``notebook_params``) and the null calibration of every rule
(``calibration``).

May import every layer below it: ``collect``, ``analysis``, ``search``, ``models``, ``problems``,
``tinyworld.task`` and the top-level utilities. Nothing in the library imports it; notebooks do,
as ``from tts_utils import study`` and ``study.<name>`` for the names re-exported here.
"""

from tts_utils.study.compute_optimal import (
    choice_flops,
    choice_table,
    compute_optimal_curve,
    finding_small_beats_large,
    finding_table5,
    flops_table,
    table5,
)
from tts_utils.study.grid import (
    GRID_METHODS,
    SEARCH,
    TTS_METHODS,
    NotebookData,
    collect_grid,
    grid_config,
    hard_grid,
    setup_notebook,
    with_rule,
)
from tts_utils.study.prm_findings import finding_length_bias, finding_voting, voting_table
from tts_utils.study.strategy import (
    finding_difficulty,
    finding_policy_size,
    finding_strategy_vs_prm,
    prm_quality,
    search_minus_bon,
)
from tts_utils.study.verdicts import (
    FAMILY_ALPHA,
    N_BOOT,
    claim_part,
    problem_means,
    save_verdict,
    summarize,
    verdict_markdown,
    verdict_rule,
)

__all__ = [
    "choice_flops", "choice_table", "claim_part", "collect_grid", "compute_optimal_curve",
    "FAMILY_ALPHA", "finding_difficulty", "finding_length_bias", "finding_policy_size",
    "finding_small_beats_large", "finding_strategy_vs_prm", "finding_table5", "finding_voting",
    "flops_table", "grid_config", "GRID_METHODS", "hard_grid", "N_BOOT", "NotebookData", "prm_quality",
    "problem_means", "save_verdict", "SEARCH", "search_minus_bon", "setup_notebook", "summarize", "table5",
    "TTS_METHODS", "verdict_markdown", "verdict_rule", "voting_table", "with_rule",
]
