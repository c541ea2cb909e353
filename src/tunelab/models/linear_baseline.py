"""The honest baseline every classification run is measured against.

TF-IDF over word 1-2-grams and character 1-4-grams (within words, so Chinese and English both
get useful features) and a logistic regression: seconds to fit, and on review-style data often
within a few points of a fine-tuned transformer. A fine-tuned model that does not beat it has
not earned its cost, and the run says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np

METHOD = "TF-IDF word 1-2 + char 1-4 grams, logistic regression"
MAX_FEATURES = 200_000  # per analyzer: the most frequent n-grams, the rest dropped
# the n-gram vocabulary is counted on at most this many training texts (a seeded sample):
# counted on all, every distinct n-gram is held before MAX_FEATURES prunes them, 3.9 GB for
# 300,000 texts (benchmarks/baseline_scale.py); the model is still fitted on every row
VOCABULARY_ROWS = 50_000


def _features(train_texts: list[str], vocabulary_rows: int | None = VOCABULARY_ROWS, seed: int = 0):
    """The fitted TF-IDF union, the training texts' features and the texts' order in them.

    Fitting and transforming run in one pass over each text (tokenising is most of the
    baseline's time): with more than ``vocabulary_rows`` texts, the sample the vocabulary is
    counted on comes first in the features and the rest after, as ``order`` says.
    """
    from scipy.sparse import vstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    union = FeatureUnion([
        ("words", TfidfVectorizer(ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b",
                                  sublinear_tf=True, min_df=2, max_features=MAX_FEATURES)),
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True,
                                  min_df=2, max_features=MAX_FEATURES)),
    ])  # fmt: skip

    def fitted(texts: list[str]) -> Any:
        try:
            return union.fit_transform(texts)
        except ValueError:  # a handful of texts: no n-gram seen twice; keep them all
            union.set_params(words__min_df=1, chars__min_df=1)
            return union.fit_transform(texts)

    order = np.arange(len(train_texts))
    if vocabulary_rows is None or len(train_texts) <= vocabulary_rows:
        return union, fitted(train_texts), order
    sampled = np.zeros(len(train_texts), dtype=bool)
    sampled[np.random.default_rng(seed).choice(len(train_texts), vocabulary_rows, False)] = True
    order = np.concatenate([order[sampled], order[~sampled]])
    counted = fitted([train_texts[i] for i in order[:vocabulary_rows]])
    rest = union.transform([train_texts[i] for i in order[vocabulary_rows:]])
    return union, vstack([counted, rest], format="csr"), order


def linear_baseline_outputs(
    train_texts: list[str],
    targets: np.ndarray,
    problem_type: str,
    texts_to_score: dict[str, list[str]],
    seed: int = 0,
    vocabulary_rows: int | None = VOCABULARY_ROWS,
) -> dict[str, np.ndarray]:
    """Fit the baseline on the training texts; its outputs for each named list of texts.

    Args:
        train_texts: the training texts (pairs already joined).
        targets: class ids (single-label), 0/1 rows (multi-label) or floats (regression).
        problem_type: ``single_label``, ``multi_label`` or ``regression``.
        texts_to_score: e.g. ``{"validation": [...], "test": [...]}``.
        vocabulary_rows: count the n-grams on a sample of this many training texts (``None``:
            on all of them).

    Returns:
        Per name, outputs shaped like the fine-tuned model's: log-probabilities per class
        (single-label), logits per label (multi-label) or one value per row (regression), so
        the task scores them with the same code as the model's.
    """
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.multiclass import OneVsRestClassifier

    features, x_train, order = _features(train_texts, vocabulary_rows, seed)
    targets = targets[order]
    if problem_type == "regression":
        model = Ridge(alpha=1.0).fit(x_train, targets)
        return {
            name: model.predict(features.transform(texts)).reshape(-1, 1)
            for name, texts in texts_to_score.items()
        }
    classifier = LogisticRegression(C=4.0, max_iter=2000, random_state=seed)
    if problem_type == "multi_label":
        model = OneVsRestClassifier(classifier).fit(x_train, targets)
    else:
        model = classifier.fit(x_train, targets)
    outputs = {}
    for name, texts in texts_to_score.items():
        probabilities = np.clip(model.predict_proba(features.transform(texts)), 1e-7, 1 - 1e-7)
        if problem_type == "multi_label":
            outputs[name] = np.log(probabilities / (1 - probabilities))  # back to logits
        else:
            # a class absent from the training rows never gets a column from scikit-learn
            full = np.full((len(texts), int(targets.max()) + 1), 1e-7)
            full[:, model.classes_] = probabilities
            outputs[name] = np.log(full)
    return outputs
