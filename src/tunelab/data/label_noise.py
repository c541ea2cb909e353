"""Suspected label errors: out-of-fold probabilities fed to confident learning (cleanlab)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pandas as pd


def _quick_features(texts: list[str], words: bool | None = None) -> Any:
    """TF-IDF over hashed character 1-3-grams, and word 1-2-grams beside them where spaces
    mark words (no labels used, so computed once for all folds).

    With 5% of labels flipped, adding word 1-2-grams raised the precision at which flips
    are found from 0.11 to 0.15 on SST-2 ("not bad" is two words, not characters) and from
    0.66 to 0.81 on SMS spam, at better recall; on Chinese reviews, whose "words" are whole
    clauses between punctuation, it moved precision and recall by under a point and the share
    of flips among the top suspects down by one (means of three plantings;
    ``benchmarks/label_error_features.py``), so they keep characters alone.
    ``words`` decides it (``None``: :func:`spaced_words`).
    """
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

    def weighted(**analyzer: Any) -> Any:
        # float32, weighted in place: a third of the memory of float64 and a weighted copy
        # (the doctor's peak on a million texts fell from 7.6 to 4.4 GB)
        hashed = _hashed(HashingVectorizer(
            **analyzer, n_features=2**20, alternate_sign=False, norm=None, dtype=np.float32
        ), texts)  # fmt: skip
        return TfidfTransformer(sublinear_tf=True).fit(hashed).transform(hashed, copy=False)

    characters = weighted(analyzer="char", ngram_range=(1, 3))
    if not (spaced_words(texts) if words is None else words):
        return characters
    word_grams = weighted(analyzer="word", ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b")
    return hstack([characters, word_grams], format="csr")


PARALLEL_FROM = 10_000  # texts: below, starting worker processes costs more than it saves
HASHING_CHUNKS = 8  # pieces of the texts hashed by the workers: the last ones balance the load


def _hashed(vectorizer: Any, texts: list[str]) -> Any:
    """``vectorizer.transform(texts)``, on every core for many texts: a hashing vectorizer has
    nothing fitted, so pieces hashed apart and stacked are the same matrix, and its n-grams
    are cut in Python, one core's work (100,000 reviews: 5.4 s on one core, 3.0 s on two)."""
    if len(texts) < PARALLEL_FROM:
        return vectorizer.transform(texts)
    from joblib import Parallel, delayed
    from scipy.sparse import vstack

    size = -(-len(texts) // HASHING_CHUNKS)
    pieces = Parallel(n_jobs=-1)(
        delayed(vectorizer.transform)(texts[start : start + size])
        for start in range(0, len(texts), size)
    )
    return vstack(pieces, format="csr")


def spaced_words(texts: list[str]) -> bool:
    """Whether spaces mark the words of these texts: at least one character in twenty
    a space (English prose about one in six; Chinese and Japanese almost none)."""
    total = sum(len(text) for text in texts)
    return total > 0 and sum(text.count(" ") for text in texts) >= total / 20


def _quick_classifier(seed: int) -> Any:
    """A logistic-loss linear model trained by SGD (seconds on tens of thousands of texts)."""
    from sklearn.linear_model import SGDClassifier

    return SGDClassifier(loss="log_loss", alpha=2e-6, max_iter=10, tol=None, random_state=seed)


def out_of_fold_probabilities(texts: list[str], label_ids: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each row's class probabilities from a quick model that never saw that row's label.

    TF-IDF over hashed character 1-3-grams and a logistic-loss linear model trained by SGD:
    seconds on tens of thousands of texts (lbfgs took minutes on 50,000 texts of three
    classes), and strong enough on short texts to tell a flipped label from a hard example.
    The features are computed once for all rows (they use no labels), so only the
    classifier is refitted per fold.
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    folds = int(min(5, np.bincount(label_ids).min()))
    if folds < 2:
        raise ValueError("every class needs at least 2 rows for out-of-fold predictions")
    features = _quick_features(texts)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    classifier = _quick_classifier(seed)
    jobs = -1 if len(texts) > 10_000 else None  # worker start-up costs more on small data
    return cross_val_predict(
        classifier, features, label_ids, cv=cv, method="predict_proba", n_jobs=jobs
    )


def encoded_labels(labels: pd.Series) -> tuple[list[str], np.ndarray]:
    """The sorted label names and each row's index among them (the probabilities' columns)."""
    names = sorted(labels.astype(str).unique())
    index = {name: i for i, name in enumerate(names)}
    return names, labels.astype(str).map(index).to_numpy()


def skill_over_chance(label_ids: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """How well the probabilities' top class matches the given labels, against chance.

    Returns:
        ``balanced_accuracy`` (the mean recall over classes, so a model that always says the
        largest class scores chance) and ``chance_level``: 1 / classes plus three standard
        errors for this many rows, the most that labels unrelated to the texts reach.
    """
    from sklearn.metrics import balanced_accuracy_score

    classes = probabilities.shape[1]
    chance = 1.0 / classes
    level = chance + 3 * float(np.sqrt(chance * (1 - chance) / max(len(label_ids), 1)))
    score = balanced_accuracy_score(label_ids, probabilities.argmax(axis=1))
    return {"balanced_accuracy": round(float(score), 4), "chance_level": round(level, 4)}


def suspected_label_errors(
    texts: pd.Series, labels: pd.Series, probabilities: np.ndarray | None = None, seed: int = 0
) -> pd.DataFrame:
    """Rows whose label is likely wrong, most likely first.

    Args:
        texts: the texts, indexed by row number.
        labels: their single labels (strings).
        probabilities: class probabilities per row in sorted-label order (e.g. from a
            fine-tuned model); ``None`` computes out-of-fold ones.

    Returns:
        Columns ``row``, ``text``, ``given``, ``suggested``, ``given_probability``,
        ``suggested_probability``.
    """
    from cleanlab.filter import find_label_issues

    names, label_ids = encoded_labels(labels)
    if probabilities is None:
        probabilities = out_of_fold_probabilities(texts.astype(str).tolist(), label_ids, seed)
    # cleanlab forks a multiprocessing pool per call; forked from a process with other threads
    # (the workbench's server answers in a thread pool) the children can hang on a lock the
    # fork copied held, and the call never returns: one process then
    alone = threading.active_count() == 1
    ranked = find_label_issues(
        label_ids, probabilities, return_indices_ranked_by="self_confidence",
        n_jobs=None if alone else 1,
    )  # fmt: skip
    suggested = probabilities[ranked].argmax(axis=1)
    return pd.DataFrame(
        {
            "row": texts.index[ranked],
            "text": texts.iloc[ranked].astype(str).to_numpy(),
            "given": [names[i] for i in label_ids[ranked]],
            "suggested": [names[i] for i in suggested],
            "given_probability": probabilities[ranked, label_ids[ranked]].round(4),
            "suggested_probability": probabilities[ranked, suggested].round(4),
        }
    )


def suspected_multi_label_errors(
    texts: pd.Series, label_sets: pd.Series, seed: int = 0, probabilities: np.ndarray | None = None
) -> pd.DataFrame:
    """Rows whose label set is likely wrong (a label missing or one too many), most likely
    first: out-of-fold one-vs-rest probabilities of the same quick TF-IDF model, one per
    label, fed to cleanlab's multi-label confident learning.

    Args:
        texts: the texts, indexed by row number.
        label_sets: each row's labels, a list of names.
        probabilities: each label's probability per row, labels in sorted order (e.g. a
            fine-tuned model's sigmoid outputs); ``None`` computes out-of-fold ones.

    Returns:
        The columns of :func:`suspected_label_errors`; ``given`` and ``suggested`` are label
        sets written ``a|b`` (suggested: the labels the model gives 0.5 or more), the
        probabilities the model's mean over those labels (0 for an empty set).
    """
    from cleanlab.filter import find_label_issues
    from sklearn.model_selection import KFold, cross_val_predict
    from sklearn.multiclass import OneVsRestClassifier

    names = sorted({name for labels in label_sets for name in labels})
    index = {name: i for i, name in enumerate(names)}
    targets = np.zeros((len(label_sets), len(names)), dtype=int)
    for row, labels in enumerate(label_sets):
        targets[row, [index[name] for name in labels]] = 1
    if probabilities is None:
        probabilities = cross_val_predict(
            OneVsRestClassifier(_quick_classifier(seed)),
            _quick_features(texts.astype(str).tolist()), targets,
            cv=KFold(n_splits=5, shuffle=True, random_state=seed), method="predict_proba",
        )  # fmt: skip
    alone = threading.active_count() == 1  # see suspected_label_errors
    ranked = find_label_issues(
        [list(np.flatnonzero(row)) for row in targets], probabilities, multi_label=True,
        return_indices_ranked_by="self_confidence", n_jobs=None if alone else 1,
    )  # fmt: skip
    given, suggested = targets[ranked].astype(bool), probabilities[ranked] >= 0.5

    def written(chosen: np.ndarray) -> list[str]:
        return ["|".join(names[i] for i in np.flatnonzero(row)) for row in chosen]

    def mean_of(chosen: np.ndarray) -> np.ndarray:
        counts = chosen.sum(axis=1)
        sums = (probabilities[ranked] * chosen).sum(axis=1)
        return np.divide(sums, counts, out=np.zeros(len(counts)), where=counts > 0)

    return pd.DataFrame(
        {
            "row": texts.index[ranked],
            "text": texts.iloc[ranked].astype(str).to_numpy(),
            "given": written(given),
            "suggested": written(suggested),
            "given_probability": mean_of(given).round(4),
            "suggested_probability": mean_of(suggested).round(4),
        }
    )


def label_error_summary(errors: pd.DataFrame, rows: int, examples: int = 10) -> dict[str, Any]:
    """The report section for :func:`suspected_label_errors`."""
    return {
        "suspected": len(errors),
        "share": round(len(errors) / max(rows, 1), 4),
        "examples": errors.head(examples).to_dict(orient="records"),
        "all": errors.drop(columns="text").to_dict(orient="records"),
    }
