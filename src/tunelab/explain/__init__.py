"""Explanations of predictions: token attributions by integrated gradients (Captum) and the
attention maps of a chosen layer and head, as JSON-able dicts and as HTML.

Captum and matplotlib are imported inside the functions that need them (``tunelab[explain]``).
"""

from __future__ import annotations

from tunelab.explain.explainer import explain, explain_loaded
from tunelab.explain.html import render_fragment, render_page

__all__ = ["explain", "explain_loaded", "render_fragment", "render_page"]
