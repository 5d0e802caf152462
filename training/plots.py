"""Plots of evaluation results (matplotlib's Agg canvas: no display, no pyplot global state)."""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


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
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
