import hashlib

import matplotlib.pyplot as plt
import pandas as pd

from tts_utils import plots


def _draw(out_dir):
    plots.set_style()
    table = pd.DataFrame({"method": ["best_of_n"] * 3 + ["beam_search"] * 3, "n": [4, 16, 64] * 2,
                          "acc": [0.3, 0.4, 0.5, 0.35, 0.45, 0.5], "lo": [0.2] * 6, "hi": [0.6] * 6})
    fig, ax = plt.subplots()
    plots.accuracy_vs_n(ax, table, title="t")
    ax.legend()
    paths = plots.save(fig, "fig", out_dir)
    plt.close(fig)
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


def test_saved_figures_are_byte_identical_across_runs(tmp_path):
    a = _draw(tmp_path / "a")
    b = _draw(tmp_path / "b")
    assert a == b
    assert (tmp_path / "a" / "fig.png").exists() and (tmp_path / "a" / "fig.pdf").exists()


def test_accuracy_plot_draws_one_line_per_method_on_a_log2_axis(tmp_path):
    plots.set_style()
    table = pd.DataFrame({"method": ["dvts", "dvts"], "n": [4, 16], "acc": [0.1, 0.2], "lo": [0, 0.1],
                          "hi": [0.2, 0.3]})
    fig, ax = plt.subplots()
    plots.accuracy_vs_n(ax, table)
    assert ax.get_xscale() == "log" and len(ax.get_lines()) == 1
    assert ax.get_lines()[0].get_label() == "DVTS"
    plt.close(fig)
