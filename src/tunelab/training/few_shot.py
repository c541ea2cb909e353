"""Few-shot classification by the SetFit method, inside an ordinary classification model.

Phase 1 tunes the encoder contrastively: pairs of training texts with the same label are
pulled together, pairs with different labels pushed apart (cosine-similarity loss on what
the classifier layer sees). A handful of examples per class gives hundreds of pairs, which
is why this beats plain fine-tuning on the same few examples. Phase 2 fits a logistic
regression on the tuned features (its regularisation chosen by cross-validation over the
same examples) and writes its weights into the model's classifier layer,
so the result is a normal ``AutoModelForSequenceClassification`` folder.

Pairs are drawn lazily, a batch at a time, and their number is capped: memory stays flat
however much data there is.
"""

from __future__ import annotations

import inspect
import logging
import math
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from tunelab.config import FewShotConfig
from tunelab.errors import UserError
from tunelab.inference import autocast, forward_in_batches

log = logging.getLogger("tunelab")


def contrastive_pairs(
    labels: np.ndarray, rounds: int, max_pairs: int, seed: int
) -> Iterator[tuple[int, int, float]]:
    """Index pairs with a target similarity: 1.0 for the same label, 0.0 for different ones.

    Each round gives every example one partner of its own class and one of another class
    (SetFit's sampling), in a fresh random order; at most ``max_pairs`` pairs in all.
    """
    rng = np.random.default_rng(seed)
    members = {label: np.flatnonzero(labels == label) for label in np.unique(labels)}
    classes = np.array(sorted(members))
    made = 0
    for _ in range(rounds):
        for i in rng.permutation(len(labels)):
            own = members[labels[i]]
            if len(own) > 1:
                j = own[rng.integers(len(own) - 1)]
                j = own[-1] if j == i else j  # a partner other than itself, uniformly
                yield int(i), int(j), 1.0
                made += 1
            others = classes[classes != labels[i]]
            if len(others):
                pool = members[others[rng.integers(len(others))]]
                yield int(i), int(pool[rng.integers(len(pool))]), 0.0
                made += 1
            if made >= max_pairs:
                return


def pair_count(labels: np.ndarray, rounds: int, max_pairs: int) -> int:
    """How many pairs :func:`contrastive_pairs` yields for these labels."""
    sizes = {label: int((labels == label).sum()) for label in np.unique(labels)}
    per_round = sum(sizes[label] > 1 for label in labels) + (len(sizes) > 1) * len(labels)
    return min(rounds * per_round, max_pairs)


def classifier_layer(model: Any) -> tuple[Any, str]:
    """The linear layer that turns features into label scores, and its attribute path."""
    import torch

    num_labels = model.config.num_labels
    body = getattr(model, "base_model_prefix", "")
    found = None
    for name, module in model.named_modules():
        if name.split(".")[0] == body:
            continue
        if isinstance(module, torch.nn.Linear) and module.out_features == num_labels:
            found = (module, name)
    if found is None:
        raise UserError(
            f"training.method=few-shot found no classifier layer in {type(model).__name__}; "
            "use training.method=full for this model"
        )
    return found


def _set_module(model: Any, path: str, module: Any) -> None:
    parent, _, leaf = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def _features(model: Any, batch: dict[str, Any], precision: str) -> Any:
    batch = {k: v.to(model.device) for k, v in batch.items()}
    with autocast(model, precision):
        return model(**batch).logits.float()  # the classifier is an identity here


def _padded(tokenizer: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("input_ids", "attention_mask", "token_type_ids")
    return tokenizer.pad([{k: r[k] for k in keys if k in r} for r in rows], return_tensors="pt")


HEAD_STRENGTHS = (0.01, 0.1, 1.0, 10.0, 100.0)


def fit_head(features: np.ndarray, labels: np.ndarray, fit_intercept: bool) -> Any:
    """Logistic regression whose regularisation is chosen by stratified cross-validation.

    With a handful of examples in a few hundred dimensions the right strength varies with
    the data; k-fold over the training examples (k = the smallest class's size, 2 to 5)
    picks it from :data:`HEAD_STRENGTHS` at the cost of a few tiny fits.
    """
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    folds = int(min(5, np.bincount(labels)[np.unique(labels)].min()))
    # scikit-learn 1.9 warns that its defaults will change (scoring to log loss in 1.11,
    # l1_ratios to (0,), the fitted attributes): C is chosen on accuracy here, with a plain
    # L2 penalty, and the new attributes where this version has them (C_ a scalar)
    parameters = inspect.signature(LogisticRegressionCV).parameters
    settled = {"l1_ratios": (0.0,)} if parameters["l1_ratios"].default == "warn" else {}
    if "use_legacy_attributes" in parameters:
        settled["use_legacy_attributes"] = False
    # a classifier layer without a bias (ModernBERT's default) gets a head without one
    return LogisticRegressionCV(
        Cs=list(HEAD_STRENGTHS),
        cv=StratifiedKFold(folds, shuffle=True, random_state=0),
        max_iter=5000,
        fit_intercept=fit_intercept,
        scoring="accuracy",
        **settled,
    ).fit(features, labels)


def train_few_shot(
    model: Any,
    tokenizer: Any,
    features: Any,
    labels: np.ndarray,
    settings: FewShotConfig,
    learning_rate: float,
    batch_size: int,
    precision: str,
    seed: int,
) -> dict[str, Any]:
    """Contrastive encoder tuning, then a logistic-regression head written into ``model``.

    Args:
        model: an ``AutoModelForSequenceClassification``; changed in place.
        features: the task's encoded training rows (``input_ids``, ``attention_mask``, ...).
        labels: the class id of each row.

    Returns:
        Training statistics: the head's chosen C, pairs, steps, mean loss of the last steps,
        seconds.

    Raises:
        UserError: if a class has a single example or there is only one class.
    """
    import torch
    from transformers import get_linear_schedule_with_warmup

    counts = np.bincount(labels, minlength=model.config.num_labels)
    if (counts == 0).any() or (counts < 2).any():
        raise UserError(
            "training.method=few-shot needs at least 2 training examples of every class; "
            f"the training data has {dict(enumerate(counts.tolist()))} (class id: rows)"
        )
    started = time.time()
    classifier, path = classifier_layer(model)
    _set_module(model, path, torch.nn.Identity())
    rows = [features[i] for i in range(len(features))]
    total = pair_count(labels, settings.pair_rounds, settings.max_pairs)
    steps = math.ceil(total / batch_size)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=learning_rate, weight_decay=0.01
    )
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.1 * steps), steps)
    torch.manual_seed(seed)
    model.train()
    losses: list[float] = []
    pairs = contrastive_pairs(labels, settings.pair_rounds, settings.max_pairs, seed)
    log.info("few-shot: %d contrastive pairs of %d examples, %d steps", total, len(rows), steps)
    for _ in range(steps):
        chunk = [pair for _, pair in zip(range(batch_size), pairs, strict=False)]
        if not chunk:
            break
        left = _features(model, _padded(tokenizer, [rows[i] for i, _, _ in chunk]), precision)
        right = _features(model, _padded(tokenizer, [rows[j] for _, j, _ in chunk]), precision)
        target = torch.tensor([s for _, _, s in chunk], device=left.device)
        loss = torch.nn.functional.mse_loss(torch.cosine_similarity(left, right), target)
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(loss.item())

    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in rows[0]]
    columns = {name: [row[name] for row in rows] for name in names}
    embedded = forward_in_batches(model, tokenizer, columns, 64, precision)
    head = fit_head(embedded, labels, fit_intercept=classifier.bias is not None)
    weight = np.zeros((model.config.num_labels, embedded.shape[1]), dtype=np.float32)
    bias = np.zeros(model.config.num_labels, dtype=np.float32)
    if len(head.classes_) == 2:  # one score for the second class: softmax([0, s]) = sigmoid(s)
        weight[head.classes_[1]] = head.coef_[0]
        bias[head.classes_[1]] = head.intercept_[0]
    else:
        weight[head.classes_] = head.coef_
        bias[head.classes_] = head.intercept_
    with torch.no_grad():
        classifier.weight.copy_(torch.from_numpy(weight))
        if classifier.bias is not None:
            classifier.bias.copy_(torch.from_numpy(bias))
    _set_module(model, path, classifier)
    tail = losses[-max(1, len(losses) // 10) :]
    return {
        "head_c": float(np.ravel(head.C_)[0]),
        "pairs": total,
        "steps": len(losses),
        "loss": float(np.mean(tail)) if tail else float("nan"),
        "seconds": round(time.time() - started, 2),
    }
