"""Numbers reported by the paper (Liu et al. 2025, arXiv 2502.06703), for labelled reference
overlays beside our own measurements. Nothing here is measured by this project.

Sources: Tables 3 and 6 as printed in the paper (arXiv v1; the same values appear in the table
images of the authors' repository, RyanLiu112/compute-optimal-tts, ``static/images``); Fig. 6's
fitted curve as stated in the paper's text. Where a number only comes from secondary summaries
it says so (``SECONDARY``), and notebooks must label it that way.

Accuracies are percentages, as the paper prints them.
"""

from __future__ import annotations

import math

# Table 3: frontier models with CoT (their own reported scores) against small policies with
# compute-optimal TTS. Keys of the TTS rows are registry names (tts_utils.models.catalog); ``n`` is the
# budget where the paper states one (otherwise its usual maximum, 256).
TABLE3_COT = {  # model: (MATH-500, AIME24)
    "GPT-4o": (74.6, 9.3),
    "o1-preview": (85.5, 44.6),
    "o1-mini": (90.0, 63.6),
    "o1": (94.8, 79.2),
    "Llama-3.1-70B-Instruct": (65.2, 16.7),
    "Llama-3.1-405B-Instruct": (71.4, 23.3),
    "QwQ-32B-Preview": (90.6, 50.0),
    "DeepSeek-R1": (97.3, 79.8),
}
TABLE3_TTS = [  # (registry name, N, MATH-500, AIME24)
    ("Llama-3.2-1B-Instruct", 256, 66.2, 16.7),
    ("Llama-3.2-1B-Instruct", 512, 72.2, 10.0),
    ("Llama-3.2-3B-Instruct", 256, 75.6, 30.0),
    ("Qwen2.5-0.5B-Instruct", 256, 76.4, 10.0),
    ("Qwen2.5-1.5B-Instruct", 256, 81.8, 20.0),
    ("DeepSeek-R1-Distill-Qwen-1.5B", 256, 91.6, 63.3),
    ("DeepSeek-R1-Distill-Qwen-7B", 256, 95.2, 83.3),
]
# The claims the paper attaches to Table 3 (its abstract and Section 5), as (small policy with
# TTS, N, frontier model with CoT, datasets on which the paper says the small one wins).
TABLE3_CLAIMS = [
    ("Llama-3.2-1B-Instruct", 512, "Llama-3.1-405B-Instruct", ("math500",)),
    ("Llama-3.2-3B-Instruct", 256, "Llama-3.1-405B-Instruct", ("math500", "aime24")),
    ("Qwen2.5-0.5B-Instruct", 256, "GPT-4o", ("math500", "aime24")),
    ("DeepSeek-R1-Distill-Qwen-1.5B", 256, "o1-preview", ("math500", "aime24")),
    ("DeepSeek-R1-Distill-Qwen-1.5B", 256, "o1-mini", ("math500",)),
    ("DeepSeek-R1-Distill-Qwen-7B", 256, "o1", ("math500", "aime24")),
    ("DeepSeek-R1-Distill-Qwen-7B", 256, "DeepSeek-R1", ("aime24",)),
]

# Table 6: Qwen2.5-7B-Instruct with TTS against long-CoT methods (MATH-500, AIME24).
TABLE6_LONG_COT = {
    "Qwen2.5-7B-Instruct (CoT)": (76.8, 13.3),
    "Qwen2.5-Math-7B-Instruct (CoT)": (79.8, 13.3),
    "rStar-Math-7B": (78.4, 26.7),
    "Eurus-2-7B-PRIME": (79.2, 26.7),
    "Qwen2.5-7B-SimpleRL-Zero": (77.2, 33.3),
    "Qwen2.5-7B-SimpleRL": (82.4, 26.7),
    "Satori-Qwen-7B": (83.6, 23.3),
    "DeepSeek-R1-Distill-Qwen-7B": (92.4, 63.3),
}
TABLE6_TTS = {  # PRM registry name: (MATH-500, AIME24) of Qwen2.5-7B-Instruct with TTS
    "Qwen2.5-Math-PRM-7B": (88.0, 33.3),
    "Qwen2.5-Math-PRM-72B": (91.0, 36.7),
}
TABLE6_POLICY = "Qwen2.5-7B-Instruct"

DATASET_COLUMN = {"math500": 0, "aime24": 1}  # position in the (MATH-500, AIME24) pairs above

# Fig. 6: TTS accuracy (%) against the PRM's process-supervision ability X (its ProcessBench
# score, in %), fitted by the paper as Y = 7.66 log X + 44.31. The paper does not state the base
# of the logarithm; the natural log is assumed here (and labelled so in the figure).
FIG6_FIT = (7.66, 44.31)


def fig6_paper_fit(ability_percent):
    """The paper's Fig. 6 curve at ``ability_percent`` (ProcessBench-style score in %)."""
    slope, intercept = FIG6_FIT
    return slope * math.log(ability_percent) + intercept


# Fig. 3: only secondary sources (AI-generated reviews) give a number: 76.2% of MATH-500's
# problems have pass@1 > 80% for Qwen2.5-72B-Instruct. Notebooks must label it unverified.
SECONDARY_FIG3_TOP_BIN = {"policy": "Qwen2.5-72B-Instruct", "dataset": "math500", "bin": "> 80%", "share": 76.2}


def paper_value(table: dict, key: str, dataset: str) -> float | None:
    """A (MATH-500, AIME24) table's value for ``dataset``; None for other datasets (e.g. the tiny
    world's), where the paper has no number."""
    col = DATASET_COLUMN.get(dataset)
    return None if col is None or key not in table else table[key][col]
