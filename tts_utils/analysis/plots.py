"""One figure style for every notebook, and deterministic saving (PNG + PDF).

Colours come from seaborn's colour-blind palette with a fixed colour per method, so a method
looks the same in every figure.
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
        "figure.constrained_layout.use": True,  # room for suptitles and panel titles
        "figure.titlesize": "medium",
    })


def method_color(method: str):
    return METHOD_COLORS.get(method, _PALETTE[5])


def size_label(params: float) -> str:
    """A parameter count as people write it: 16k, 570k, 1.5B, 72B."""
    for scale, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if params >= scale:
            x = params / scale
            return f"{x:.2g}{unit}" if x < 10 else f"{x:.0f}{unit}"
    return f"{params:.0f}"


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
    _show_in_notebook(paths[0])
    return paths


def _show_in_notebook(png: Path) -> None:
    """In a notebook kernel, show the saved PNG inline: the Agg backend draws nothing there by
    itself, and these exact bytes (not a second rendering) are what the executed notebook keeps.
    Elsewhere (scripts, tests) nothing."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        return
    from IPython.display import Image, display

    display(Image(filename=str(png)))


DODGE_OCTAVES = 0.06  # sideways step between neighbouring lines of accuracy_vs_n


def accuracy_vs_n(ax, table, hue: str = "method", title: str | None = None, percent: bool = True,
                  label_fn=None) -> None:
    """Accuracy against budget N (log2 axis), one line per ``hue`` value, CI as a band.

    ``table`` has columns n, acc, lo, hi and ``hue`` (as from analysis.accuracy_table). The lines
    are dodged sideways by a few hundredths of an octave, so that equal accuracies (common on
    small problem sets) do not hide one line behind another.
    """
    scale = 100 if percent else 1
    label_fn = label_fn or (method_label if hue == "method" else str)
    groups = list(table.groupby(hue, sort=False))
    for k, (key, g) in enumerate(groups):
        g = g.sort_values("n")
        x = g["n"] * 2 ** (DODGE_OCTAVES * (k - (len(groups) - 1) / 2))
        color = method_color(key) if hue == "method" else None
        marker = METHOD_MARKERS.get(key, "o") if hue == "method" else "o"
        (line,) = ax.plot(x, g["acc"] * scale, marker=marker, ms=4, color=color, label=label_fn(key))
        ax.fill_between(x, g["lo"] * scale, g["hi"] * scale, color=line.get_color(), alpha=0.15, lw=0)
    ax.set_xscale("log", base=2)
    ns = sorted(table["n"].unique())
    ax.set_xticks(ns, [str(int(n)) for n in ns])
    ax.set_xlabel("budget N")
    ax.set_ylabel("accuracy (%)" if percent else "accuracy")
    if title:
        ax.set_title(title)
