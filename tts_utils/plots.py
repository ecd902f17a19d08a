"""One figure style for every notebook, and deterministic saving (PNG + PDF).

Colours come from seaborn's colour-blind palette with a fixed colour per method, so a method
looks the same in every figure; the paper's reference numbers are drawn in grey and labelled
"paper" wherever they appear beside ours.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # notebooks and CI render without a display

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

_PALETTE = sns.color_palette("colorblind")
METHOD_COLORS = {
    "majority": _PALETTE[7],
    "best_of_n": _PALETTE[0],
    "beam_search": _PALETTE[1],
    "dvts": _PALETTE[2],
    "cot": _PALETTE[3],
    "compute_optimal": _PALETTE[4],
}
METHOD_LABELS = {
    "majority": "Majority",
    "best_of_n": "Best-of-N",
    "beam_search": "Beam search",
    "dvts": "DVTS",
    "cot": "CoT (greedy)",
    "compute_optimal": "Compute-optimal",
}
PAPER_COLOR = "0.55"
METHOD_MARKERS = {"majority": "o", "best_of_n": "s", "beam_search": "^", "dvts": "D", "cot": "x",
                  "compute_optimal": "*"}


def set_style() -> None:
    """Apply the project's style (idempotent)."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update({
        "figure.dpi": 100,
        "savefig.dpi": 150,
        "savefig.bbox": "tight",
        "axes.titlesize": "medium",
        "axes.titleweight": "bold",
        "legend.frameon": False,
        "svg.hashsalt": "tts-study",  # stable ids in SVG/PDF output
        "pdf.compression": 6,
    })


def method_color(method: str):
    return METHOD_COLORS.get(method, _PALETTE[5])


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def save(fig, name: str, figures_dir: str | Path = "figures") -> list[Path]:
    """Save ``fig`` as figures_dir/name.png and .pdf with byte-for-byte reproducible output.

    Timestamps and software versions are left out of the files' metadata so the same data gives
    the same bytes.
    """
    out = Path(figures_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    fig.savefig(paths[0], metadata={"Software": None})
    fig.savefig(paths[1], metadata={"Creator": None, "Producer": None, "CreationDate": None})
    return paths
