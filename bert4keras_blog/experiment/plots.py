"""Figures the examples save: matplotlib with the Agg backend, PNG.

Public API:
    new_figure(columns=1, size=(6.5, 4.2)) -> (fig, axes).
    save_figure(fig, path, axes): grid, legends, tight layout, PNG, closed.
"""

import numpy as np

__all__ = ['new_figure', 'save_figure']


def new_figure(columns=1, size=(6.5, 4.2)):
    """A figure with ``columns`` axes side by side, drawn without a display."""
    import matplotlib  # here: selecting Agg at import would override a notebook's backend
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt.subplots(1, columns, figsize=size)


def save_figure(fig, path, axes):
    """Grid and legend on every axis, then the PNG at ``path``; closes ``fig``."""
    import matplotlib.pyplot as plt
    for ax in np.ravel(axes):
        ax.grid(alpha=0.3, which='both')
        if ax.get_legend_handles_labels()[0]:  # an unlabelled axis would warn
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
