"""recsys_helpers.plots: training curves, model comparisons and the leaderboard chart (Agg backend, no window)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from recsys_helpers.results import PRIMARY_METRIC
from recsys_helpers.plots import plot_comparison, plot_leaderboard, plot_training_curves


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_training_curves_pair_each_metric_with_its_validation_twin():
    history = {"loss": [1.0, 0.8, 0.7], "val_loss": [1.1, 0.9, 0.85], "rmse": [1.0, 0.9, 0.88]}
    ax = plot_training_curves(history)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["train loss", "validation loss", "train rmse"]
    assert list(ax.get_lines()[0].get_xdata()) == [1, 2, 3]  # epochs count from 1
    assert ax.get_lines()[1].get_linestyle() == "--"

    class History:  # what keras.Model.fit returns
        pass

    keras_like = History()
    keras_like.history = history
    assert [line.get_label() for line in plot_training_curves(keras_like, metrics=["rmse"]).get_lines()] == [
        "train rmse"]


def test_training_curves_bad_input():
    with pytest.raises(ValueError, match="history is empty"):
        plot_training_curves({})
    with pytest.raises(KeyError, match="no curve named 'mae'"):
        plot_training_curves({"loss": [1.0]}, metrics=["mae"])


def test_comparison_puts_the_best_model_on_top():
    table = pd.DataFrame({"model": ["GlobalMean", "MF", "BiasBaseline"], "rmse": [1.04, 0.87, 0.88],
                          "ndcg@10": [0.05, 0.30, 0.10]})
    ax = plot_comparison(table, "rmse")  # rmse: lower is better, inferred
    assert [t.get_text() for t in ax.get_yticklabels()][::-1] == ["MF", "BiasBaseline", "GlobalMean"]
    assert "lower is better" in ax.get_xlabel()
    ax = plot_comparison(table, "ndcg@10")
    assert [t.get_text() for t in ax.get_yticklabels()][::-1] == ["MF", "BiasBaseline", "GlobalMean"]
    assert "higher is better" in ax.get_xlabel()
    with pytest.raises(KeyError, match="no column 'mae'"):
        plot_comparison(table, "mae")


def test_leaderboard_chart_has_one_panel_per_protocol():
    tables = {"rating": pd.DataFrame({"notebook": ["01_a", "03_b"], "model": ["Bias", "MF"], "rmse": [0.88, 0.87]}),
              "ranking": pd.DataFrame({"notebook": ["01_a"], "model": ["Popularity"], "ndcg@10": [0.19]})}
    fig = plot_leaderboard(tables, PRIMARY_METRIC)
    assert len(fig.axes) == 2
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()][::-1] == ["MF  [03]", "Bias  [01]"]
    assert len(plot_leaderboard({}, PRIMARY_METRIC).axes) == 1  # an empty run still gets a (labelled) figure
