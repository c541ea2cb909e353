"""The old import paths of the modules that moved above the API keep working, with a warning."""

from __future__ import annotations

import pytest

from tunelab.evaluation.learning_curve import fit_power_law
from tunelab.studies.curve import learning_curve
from tunelab.studies.search import search


def test_training_curve_forwards_to_its_new_homes_with_a_deprecation_warning():
    import tunelab.training.curve as old

    with pytest.warns(DeprecationWarning, match="from tunelab.studies.curve"):
        assert old.learning_curve is learning_curve
    with pytest.warns(DeprecationWarning, match="from tunelab.evaluation.learning_curve"):
        assert old.fit_power_law is fit_power_law
    with pytest.raises(AttributeError, match="no_such_name"):
        old.no_such_name  # noqa: B018


def test_training_search_forwards_to_studies_search_with_a_deprecation_warning():
    from tunelab.training import search as old

    with pytest.warns(DeprecationWarning, match="from tunelab.studies.search"):
        assert old.search is search
