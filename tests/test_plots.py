import hashlib

import matplotlib.pyplot as plt
import pandas as pd

from tts_utils.analysis import plots


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


def test_size_labels_read_as_people_write_parameter_counts():
    assert [plots.size_label(x) for x in (16_000, 213_456, 570_000, 5e8, 1.5e9, 72e9, 999)] == \
        ["16k", "213k", "570k", "500M", "1.5B", "72B", "999"]


def test_equal_accuracies_do_not_hide_one_line_behind_another():
    """Two methods with the same accuracy at every N are drawn side by side, centred on N."""
    plots.set_style()
    table = pd.DataFrame({"method": ["beam_search"] * 2 + ["dvts"] * 2, "n": [4, 16] * 2, "acc": [0.1, 0.1] * 2,
                          "lo": [0.0] * 4, "hi": [0.2] * 4})
    fig, ax = plt.subplots()
    plots.accuracy_vs_n(ax, table)
    beam, dvts = (line.get_xdata() for line in ax.get_lines())
    assert all(b < n < d for b, n, d in zip(beam, (4, 16), dvts, strict=True))
    assert all(abs((b * d) ** 0.5 - n) < 1e-9 for b, n, d in zip(beam, (4, 16), dvts, strict=True))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["4", "16"]
    plt.close(fig)
