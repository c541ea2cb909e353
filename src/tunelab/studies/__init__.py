"""Studies: orchestration above the Python API that trains many runs (learning curves,
hyperparameter searches). Nothing below :mod:`tunelab.api` imports from here."""
