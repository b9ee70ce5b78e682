"""What every example's experiment shares, below the posts and above the
checkpoints: run folders and flags, training helpers, plots, claims.

Modules, one job each:
    runs      the run folder (``runs/<example>/``: settings, inputs,
              versions, metrics) and the flags every example takes
    training  seeds, tf.distribute strategies, the keep-best callback, plots
    claims    means and differences over seeds with 95% intervals, and the
              claims table every seeded example prints
"""
