"""Plots of evaluation results (matplotlib's Agg canvas: no display, no pyplot global state)."""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def figure_png(figure: Figure) -> bytes:
    """A finished matplotlib figure (on an Agg canvas) as the bytes of a PNG file."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def pck_plot_png(curves: list[dict], title: str = "3D PCK after Procrustes alignment") -> bytes:
    """3D PCK vs error threshold, one line per model, AUC in the legend (as in the HAMR paper).

    curves: dicts with ``label``, ``thresholds_mm`` (T,), ``pck`` (T,) in [0, 1] and ``auc``.
    Returns the PNG file's bytes.
    """
    fig = Figure(figsize=(6, 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for curve in curves:
        ax.plot(curve["thresholds_mm"], curve["pck"], linewidth=2, label=f"{curve['label']} (AUC={curve['auc']:.3f})")
    ax.set(xlabel="Error threshold (mm)", ylabel="3D PCK", title=title, ylim=(0, 1.0), xlim=(0, 50))
    ax.grid(True, alpha=0.4)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return figure_png(fig)


def plot_training_curves(metrics_csv: str, png_path: str) -> None:
    """Training curves from a trainer's ``metrics.csv``: the loss terms (log scale) on the left,
    validation PA-MPJPE (mm) and 2D PCK on the right. Written atomically to ``png_path``."""
    import csv
    import os

    with open(metrics_csv, newline="") as f:
        rows = list(csv.DictReader(f))

    def series(key: str) -> tuple[list, list]:
        points = [(int(r["step"]), float(r[key])) for r in rows if r.get(key) not in (None, "")]
        return [s for s, _ in points], [v for _, v in points]

    keys = list(dict.fromkeys(k for r in rows for k in r))
    fig = Figure(figsize=(11, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    losses, validation = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for key in (k for k in keys if k.startswith("train/")):
        steps, values = series(key)
        if values and min(values) > 0:
            losses.plot(steps, values, linewidth=2 if key.endswith(("loss", "total")) else 1, label=key[6:])
    losses.set(xlabel="step", ylabel="loss term (unweighted)", yscale="log", title="training loss")
    losses.grid(True, alpha=0.4)
    losses.legend(fontsize=7, loc="upper right")
    steps, values = series("val/pa_mpjpe_mm")
    if values:
        validation.plot(steps, values, "o-", color="tab:red", label="PA-MPJPE (mm)")
    validation.set(xlabel="step", ylabel="PA-MPJPE (mm)", title="held-out synthetic validation")
    validation.grid(True, alpha=0.4)
    pck = validation.twinx()
    steps, values = series("val/pck_2d")
    if values:
        pck.plot(steps, values, "s--", color="tab:blue", label="2D PCK @5%")
    pck.set(ylabel="2D PCK", ylim=(0, 1))
    handles = validation.get_legend_handles_labels()[0] + pck.get_legend_handles_labels()[0]
    if handles:
        validation.legend(handles, [h.get_label() for h in handles], loc="center right", fontsize=8)
    fig.tight_layout()
    tmp = png_path + ".tmp"
    fig.savefig(tmp, format="png")
    os.replace(tmp, png_path)
