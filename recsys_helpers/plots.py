"""Plotting helpers: training curves, model comparisons, and the course leaderboard chart."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd


def plot_training_curves(history, metrics=None, title: str = "Training curves", ax=None):
    """Plot per-epoch curves from a Keras ``History``, its ``.history`` dict, or a dict of lists.

    Each metric is drawn with its ``val_`` twin (dashed) when present; the x axis is the epoch (from 1)."""
    curves = getattr(history, "history", history)
    if not curves:
        raise ValueError("history is empty: train for at least one epoch first")
    metrics = metrics or [m for m in curves if not m.startswith("val_")]
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for name in metrics:
        if name not in curves:
            raise KeyError(f"no curve named {name!r}; available: {sorted(curves)}")
        epochs = range(1, len(curves[name]) + 1)
        line, = ax.plot(epochs, curves[name], marker="o", ms=3, label=f"train {name}")
        if f"val_{name}" in curves:
            ax.plot(epochs, curves[f"val_{name}"], ls="--", marker="o", ms=3, color=line.get_color(),
                    label=f"validation {name}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(", ".join(metrics))
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def plot_comparison(table: pd.DataFrame, metric: str, model_col: str = "model", lower_is_better: bool | None = None,
                    title: str | None = None, ax=None):
    """Horizontal bars of ``metric`` per model, best at the top, each bar labelled with its value."""
    if metric not in table:
        raise KeyError(f"no column {metric!r}; available: {list(table.columns)}")
    if lower_is_better is None:
        lower_is_better = metric.lower() in {"rmse", "mae"}
    data = table[[model_col, metric]].dropna().sort_values(metric, ascending=not lower_is_better)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.45 * len(data) + 1.2))
    bars = ax.barh(data[model_col].astype(str), data[metric], color="tab:blue")
    ax.bar_label(bars, fmt="%.3f", padding=3, fontsize=8)
    ax.set_xlabel(f"{metric} ({'lower' if lower_is_better else 'higher'} is better)")
    ax.set_title(title or f"{metric} by model")
    ax.margins(x=0.15)
    ax.grid(axis="x", alpha=0.3)
    return ax


def plot_leaderboard(tables: dict[str, pd.DataFrame], primary_metric: dict[str, tuple[str, bool]]):
    """One panel per protocol with its primary metric of every recorded model; returns the figure.

    ``primary_metric``: protocol -> (metric, lower_is_better), as ``results.PRIMARY_METRIC``."""
    PRIMARY_METRIC = primary_metric
    panels = [(p, t) for p, t in tables.items() if PRIMARY_METRIC[p][0] in t]
    if not panels:
        fig, ax = plt.subplots(figsize=(6, 1.5))
        ax.text(0.5, 0.5, "No results were recorded", ha="center", va="center")
        ax.axis("off")
        return fig
    heights = [0.45 * len(t) + 1.4 for _, t in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, sum(heights)), gridspec_kw={"height_ratios": heights},
                             squeeze=False)
    for ax, (protocol, table) in zip(axes[:, 0], panels):
        metric, lower = PRIMARY_METRIC[protocol]
        labelled = table.assign(label=table["model"] + "  [" + table["notebook"].str[:2] + "]")
        plot_comparison(labelled, metric, model_col="label", lower_is_better=lower,
                        title=f"{protocol} protocol: {metric}", ax=ax)
    fig.tight_layout()
    return fig
