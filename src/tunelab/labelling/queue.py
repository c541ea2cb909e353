"""The queue of texts to label: diverse ones first, then the ones the model is least sure of.

- Cold start: k-means on TF-IDF vectors, the text nearest each centre, one per cluster.
- Once two classes have labels: a TF-IDF (character n-grams) + logistic regression model,
  retrained every ``retrain_every`` labels (with ``background``, in a thread while the
  annotator goes on with the current model's questions), ranks the texts by margin (top
  probability minus the second); a batch takes the most uncertain texts that are not
  near-copies of each other (cosine similarity below ``max_similarity``) nor of what others
  are labelling.
- A near-duplicate (same normalised text, as the data doctor sees it) of a labelled or leased
  text is never asked.
- Each suggestion is leased to one annotator until it expires, so two annotators never label
  the same text at once.
- Double labelling: with ``double_rate`` > 0, that share of the labelled texts (chosen by a
  hash of the id, so the same ones in every process) is offered once more to a second
  annotator, blind (no model guess), before any new text; agreement is measured on these.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunelab.data.duplicates import near_duplicate_keys
from tunelab.data.load import read_table
from tunelab.errors import UserError

log = logging.getLogger(__name__)


@dataclass
class Suggestion:
    """One text to label, why it was chosen, and the model's guess (when it has one)."""

    item: str
    text: str
    reason: str
    guess: str | None = None
    spans: list[tuple[int, int, str]] | None = None  # entity labelling: the guessed spans


@dataclass
class Lease:
    annotator: str
    expires: float


def read_unlabelled(path: Path | str, text_column: str | None = None) -> pd.DataFrame:
    """Texts to label from a CSV/JSONL file (a ``text`` column, or ``text_column``; ids from an
    ``id`` column, else the row number) or plain lines (.txt: one text a line).

    Returns:
        A frame of ``id`` (str) and ``text``, plus any other columns the file has.

    Raises:
        UserError: for a missing or empty file, or no text column.
    """
    path = Path(path)
    if path.suffix.lower() in (".txt", ".text", ""):
        if not path.exists():
            raise UserError(f"data file {path} does not exist; check the path")
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        rows = [(str(n), line.strip()) for n, line in enumerate(lines, 1) if line.strip()]
        if not rows:
            raise UserError(f"data file {path} is empty; give one text per line")
        return pd.DataFrame(rows, columns=["id", "text"])
    frame = read_table(path)
    column = text_column or ("text" if "text" in frame.columns else None)
    if column is None or column not in frame.columns:
        raise UserError(
            f"{path} has no column {text_column or 'text'!r} (columns: "
            f"{', '.join(map(str, frame.columns))}); name the text column with --text-column"
        )
    frame = frame.rename(columns={column: "text"})
    frame["text"] = frame["text"].fillna("").astype(str)
    frame = frame[frame["text"].str.strip() != ""]
    if frame.empty:
        raise UserError(f"{path} has no non-empty text in column {column!r}")
    ids = frame["id"].astype(str) if "id" in frame.columns else frame.index.astype(str)
    if ids.duplicated().any():
        raise UserError(f"{path} repeats id {ids[ids.duplicated()].iloc[0]!r}; ids must be unique")
    frame = frame.assign(id=list(ids)).reset_index(drop=True)
    return frame


def text_vectorizer(max_features: int = 200_000, min_df: int = 2) -> Any:
    """TF-IDF of character 1-2-grams: works for Chinese (no word spaces) and other languages."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True,
                           min_df=min_df, max_features=max_features, dtype=np.float32)  # fmt: skip


def text_classifier(seed: int = 0) -> Any:
    """The queue's model: logistic regression on the TF-IDF vectors."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=4.0, max_iter=1000, random_state=seed)


class LabelQueue:
    """Which unlabelled text to ask next, for whom, and why.

    Args:
        items: ``id`` and ``text`` columns (see :func:`read_unlabelled`).
        label_set: the allowed labels.
        strategy: ``active`` (cold start, then uncertainty with diversity) or ``random``.
        retrain_every: labels between model retrains.
        clusters: k-means clusters for the cold start.
        lease_seconds: how long an item stays with the annotator it was given to.
        max_similarity: cosine similarity above which two texts of one batch count as copies.
        double_rate: the share of labelled texts a second annotator labels too (0 to 1).
        holdout: texts drawn at random as a held-out sample: asked one in five until it is
            labelled, blind, never trained on; each retrain scores the model on them
            (:attr:`progress`), and :meth:`estimate` fits the learning curve to the scores.
        clock: the time source (tests pass a fake one).
        background: retrain in a thread on a snapshot of the labels, so a label never waits
            for a fit; the new model takes over at the first label or question after it is
            done (:meth:`wait_for_model` waits for it). Off, a due retrain runs before
            :meth:`add_label` returns (simulations, which must be reproducible).
    """

    def __init__(
        self,
        items: pd.DataFrame,
        label_set: Sequence[str],
        strategy: str = "active",
        retrain_every: int = 20,
        clusters: int = 10,
        lease_seconds: float = 600.0,
        max_similarity: float = 0.5,
        seed: int = 0,
        double_rate: float = 0.0,
        holdout: int = 0,
        clock: Callable[[], float] = time.time,
        background: bool = False,
    ) -> None:
        if strategy not in ("active", "random"):
            raise UserError(f"strategy {strategy!r} is not one of: active, random")
        if not 0.0 <= double_rate <= 1.0:
            raise UserError(f"--double-rate {double_rate} is not between 0 and 1; give e.g. "
                            "0.1 to have one text in ten labelled twice")  # fmt: skip
        if holdout < 0:
            raise UserError(f"--holdout {holdout} must be 0 (none) or a number of texts")
        self._check_label_set(label_set)
        self.ids = [str(i) for i in items["id"]]
        self.texts = [str(t) for t in items["text"]]
        self.row_of = {item: row for row, item in enumerate(self.ids)}
        self.label_set = list(dict.fromkeys(label_set))
        self.strategy, self.retrain_every, self.clusters = strategy, retrain_every, clusters
        self.lease_seconds, self.max_similarity, self.seed = lease_seconds, max_similarity, seed
        self.clock, self.double_rate = clock, double_rate
        keys = near_duplicate_keys(pd.Series(self.texts))
        # a text of punctuation only has an empty key: it is a near-copy of nothing
        self.keys = [key or f"\0{i}" for i, key in enumerate(keys)]
        codes, _ = pd.factorize(pd.Series(self.keys))
        self.key_codes = np.asarray(codes)
        self.key_labelled = np.zeros(int(self.key_codes.max()) + 1, dtype=np.int32)
        try:
            self.vectorizer = text_vectorizer().fit(self.texts)
        except ValueError:  # a handful of texts share no character n-gram: keep them all
            self.vectorizer = text_vectorizer(min_df=1).fit(self.texts)
        self.vectors = self.vectorizer.transform(self.texts)
        self.labels: dict[str, Any] = {}  # item -> label (entity spans in EntityQueue)
        self.labelled_by: dict[str, set[str]] = {}  # item -> its annotators, oldest item first
        self.leases: dict[str, Lease] = {}
        self.passed_over: dict[str, set[int]] = {}  # annotator -> rows they skipped
        self._why: dict[str, str] = {}  # item -> the reason it was leased with
        self.model: Any = None
        self.margins: np.ndarray | None = None
        self.guesses: np.ndarray | None = None
        self.probabilities: np.ndarray | None = None  # each row's top two, low then high
        self.labels_at_training = 0
        self.rng = np.random.default_rng(seed)
        self.random_order = self.rng.permutation(len(self.ids))
        self._cold: list[tuple[int, int, int]] | None = None  # (row, cluster, clusters)
        self.holdout = min(holdout, len(self.ids) // 2)  # half the texts at most
        self.held_out = np.zeros(len(self.ids), dtype=bool)
        self.held_out[self.random_order[: self.holdout]] = True
        self.progress: list[dict[str, Any]] = []  # {"labels", "score", "held_out"} per retrain
        self.background = background
        self._fitting: threading.Thread | None = None
        self._fitted: dict[str, Any] | None = None  # the thread's result, not yet installed

    # -- labels ---------------------------------------------------------------------------

    def _check_label_set(self, label_set: Sequence[str]) -> None:
        if len(set(label_set)) < 2:
            raise UserError("give at least two labels to choose from (--labels a,b)")

    def check_label(self, label: str) -> None:
        """Raises UserError when ``label`` is not one of the label set."""
        if label not in self.label_set:
            raise UserError(
                f"label {label!r} is not one of: {', '.join(self.label_set)}; use one of them "
                "or add it to --labels"
            )

    def add_label(self, item: str, label: str, annotator: str | None = None) -> None:
        """Record ``item``'s current label, given by ``annotator`` when named (retrains the
        model every ``retrain_every`` labels)."""
        self.check_label(label)
        self._record(str(item), label, annotator)

    def _record(self, item: str, label: Any, annotator: str | None) -> None:
        """Store a checked label (a class, or entity spans) and retrain when due."""
        if item not in self.row_of:
            raise UserError(f"item {item!r} is not in the unlabelled data")
        self._adopt()
        if item not in self.labels:
            self.key_labelled[self.key_codes[self.row_of[item]]] += 1
        self.labels[item] = label
        if annotator is not None:
            self.labelled_by.setdefault(item, set()).add(annotator)
        self.leases.pop(item, None)
        # the first model waits for the cold start's labels (one per cluster)
        due = self.retrain_every if self.model is not None else self.clusters
        if self.strategy == "active" and len(self.labels) - self.labels_at_training >= due:
            if not self.background:
                self.retrain()
            elif self._fitting is None:  # one fit at a time; the next label starts another
                self._start_fit()

    def remove_label(self, item: str, annotator: str | None = None) -> None:
        """Forget a label (after ``annotator``'s undo): the item may be asked again."""
        if self.labels.pop(str(item), None) is not None:
            self.key_labelled[self.key_codes[self.row_of[str(item)]]] -= 1
        by = self.labelled_by.get(str(item), set())
        by.discard(annotator or "")
        if not by:
            self.labelled_by.pop(str(item), None)

    def labelled_twice(self, item: str) -> bool:
        """Whether ``item`` is one of the ``double_rate`` share labelled by two annotators:
        a hash of its id, so every process and restart picks the same texts."""
        return zlib.crc32(f"{self.seed}:{item}".encode()) < self.double_rate * 2**32

    def _second_opinions(self, annotator: str, count: int) -> list[tuple[int, str]]:
        """Texts one other annotator labelled that are due a second label from this one."""
        if not self.double_rate or count < 1:
            return []
        leased = self._live_leases()
        skipped = self.passed_over.get(annotator, set())
        chosen = []
        for item, by in self.labelled_by.items():
            due = len(by) == 1 and annotator not in by and item not in leased
            if due and self.row_of[item] not in skipped and self.labelled_twice(item):
                why = (f"second opinion: another annotator labelled it (label hidden); "
                       f"{self.double_rate:.0%} of texts are labelled twice")  # fmt: skip
                chosen.append((self.row_of[item], why))
                if len(chosen) == count:
                    break
        return chosen

    def training_items(self) -> list[str]:
        """The labelled items the model learns from: all but the held-out sample."""
        return [item for item in self.labels if not self.held_out[self.row_of[item]]]

    def retrain(self) -> bool:
        """Fit the model on the labels so far and score every text, now; False with one class."""
        fitted = self._fit(dict(self.labels))
        if fitted is None:
            return False
        self._install(fitted)
        return True

    def _fit(self, labels: dict[str, Any]) -> dict[str, Any] | None:
        """The model fitted on ``labels`` (a snapshot: this may run in a thread, so it reads
        nothing that labelling changes), its scores of the texts and its held-out
        measurement, as the attributes :meth:`_install` sets; None with one class."""
        items = [item for item in labels if not self.held_out[self.row_of[item]]]
        rows = [self.row_of[item] for item in items]
        y = [labels[item] for item in items]
        if len(set(y)) < 2:
            return None
        model = text_classifier(self.seed).fit(self.vectors[rows], y)
        probabilities = model.predict_proba(self.vectors)
        top2 = np.sort(probabilities, axis=1)[:, -2:]
        return {"model": model, "margins": top2[:, 1] - top2[:, 0],
                "guesses": model.classes_[probabilities.argmax(axis=1)],
                "probabilities": top2, "labels_at_training": len(labels),
                "point": self._measure(model, labels, len(items))}  # fmt: skip

    def _install(self, fitted: dict[str, Any]) -> None:
        point = fitted.pop("point")
        for name, value in fitted.items():
            setattr(self, name, value)
        if point is not None:
            self.progress.append(point)

    def _start_fit(self) -> None:
        labels = dict(self.labels)

        def fit() -> None:
            try:
                self._fitted = self._fit(labels)
            except Exception:  # the current model stays; the next due label tries again
                log.exception("retraining the labelling model on %d labels failed", len(labels))

        self._fitting = threading.Thread(target=fit, name="tunelab-label-retrain", daemon=True)
        self._fitting.start()

    def _adopt(self) -> None:
        """Install a finished background fit (read only once its thread has ended, so no
        lock is needed)."""
        if self._fitting is None or self._fitting.is_alive():
            return
        self._fitting, fitted, self._fitted = None, self._fitted, None
        if fitted is not None:
            self._install(fitted)

    def retraining(self) -> bool:
        """Whether a background retrain is under way (a finished one is installed first)."""
        self._adopt()
        return self._fitting is not None

    def wait_for_model(self, timeout: float | None = None) -> None:
        """Wait for a background retrain to finish (up to ``timeout`` seconds) and install
        its model."""
        if self._fitting is not None:
            self._fitting.join(timeout)
        self._adopt()

    # -- progress on the held-out sample ----------------------------------------------------

    metric = "accuracy"

    def _measure(
        self, model: Any, labels: dict[str, Any], trained_on: int
    ) -> dict[str, Any] | None:
        """``model``'s score on the labelled held-out texts (10 at least), as a point of
        :attr:`progress`; None with fewer."""
        held = [item for item in labels if self.held_out[self.row_of[item]]]
        if len(held) < min(10, self.holdout) or not held:
            return None
        score = self._held_out_score(model, held, labels)
        return {"labels": trained_on, "score": round(score, 4), "held_out": len(held)}

    def _held_out_score(self, model: Any, held: list[str], labels: dict[str, Any]) -> float:
        rows = [self.row_of[item] for item in held]
        predicted = model.predict(self.vectors[rows])
        return float(np.mean(predicted == np.array([labels[item] for item in held])))

    def estimate(self, target: float) -> dict[str, Any]:
        """How many training labels the fitted learning curve says reach ``target``.

        Returns:
            ``{"target", "labels", "message"}``; ``labels`` is ``None`` until three
            measurements exist or when the curve levels off below the target.
        """
        from tunelab.evaluation.learning_curve import fit_power_law, size_for

        points = {point["labels"]: point["score"] for point in self.progress}
        answer: dict[str, Any] = {"target": target, "labels": None}
        last = self.progress[-1] if self.progress else None
        if last is not None and last["score"] >= target:
            answer["message"] = (f"{self.metric} {last['score']:.3f} on the held-out sample "
                                 f"already reaches {target:g}")  # fmt: skip
            return answer
        if len(points) < 3:
            answer["message"] = (f"the learning-curve estimate for {self.metric} {target:g} "
                                 f"needs 3 measurements on the held-out sample (now "
                                 f"{len(points)})")  # fmt: skip
            return answer
        fit = fit_power_law(list(points), list(points.values()), greater_is_better=True)
        needed = size_for(fit, target, greater_is_better=True)
        if needed is None:
            level = f" (it levels off at {fit['c']:.3f})" if fit["kind"] == "power_law" else ""
            answer["message"] = (f"the learning curve does not reach {self.metric} "
                                 f"{target:g}{level}; more labels of this kind will not get "
                                 "there")  # fmt: skip
            return answer
        answer["labels"] = int(round(needed, -1)) if needed >= 100 else math.ceil(needed)
        more = max(answer["labels"] - len(self.training_items()), 0)
        answer["message"] = (f"the learning curve says about {answer['labels']} labels reach "
                             f"{self.metric} {target:g} (about {more} more)")  # fmt: skip
        return answer

    # -- suggestions ----------------------------------------------------------------------

    def _live_leases(self) -> dict[str, Lease]:
        now = self.clock()
        self.leases = {item: lease for item, lease in self.leases.items() if lease.expires > now}
        return self.leases

    def _available(self, annotator: str | None = None, held_out: bool = False) -> np.ndarray:
        """Rows that may be asked: unlabelled, not leased, no near-copy labelled or leased,
        not skipped by ``annotator``, and in the held-out sample or not (``held_out``)."""
        taken = self.key_labelled > 0
        for item in self._live_leases():
            taken[self.key_codes[self.row_of[item]]] = True
        available = ~taken[self.key_codes] & (self.held_out == held_out)
        skipped = self.passed_over.get(annotator or "", set())
        if skipped:
            available[list(skipped)] = False
        return available

    def _held_out_questions(self, annotator: str, count: int) -> list[tuple[int, str]]:
        """A text of the held-out sample, one question in five until it is labelled."""
        if not self.holdout or count < 1:
            return []
        labelled = sum(bool(self.held_out[self.row_of[item]]) for item in self.labels)
        if labelled >= self.holdout or 4 * labelled > len(self.labels) - labelled:
            return []
        available = self._available(annotator, held_out=True)
        rows = [int(r) for r in self.random_order[: self.holdout] if available[r]][:1]
        why = (f"held-out sample, {labelled + 1} of {self.holdout}: drawn at random to measure "
               "the model, never trained on")  # fmt: skip
        return [(row, why) for row in rows]

    def next(self, annotator: str = "me", count: int = 1) -> list[Suggestion]:
        """The next ``count`` texts for ``annotator``, leased to them; their own unexpired
        leases come first (asking again does not skip a text)."""
        self._adopt()
        held = [item for item, lease in self._live_leases().items()
                if lease.annotator == annotator][:count]  # fmt: skip
        result = [self._suggest(self.row_of[item], "still yours: " + self._why.get(item, ""))
                  for item in held]  # fmt: skip
        for row, reason in self._second_opinions(annotator, count - len(result)):
            result.append(self._suggest(row, reason))
        for row, reason in self._held_out_questions(annotator, count - len(result)):
            result.append(self._suggest(row, reason))
        if len(result) < count:
            rows = self._choose(count - len(result), annotator)
            result += [self._suggest(row, reason) for row, reason in rows]
        expires = self.clock() + self.lease_seconds
        for suggestion in result:
            self.leases[suggestion.item] = Lease(annotator, expires)
            # a held item's reason is its first one, not 'still yours: still yours: ...'
            self._why[suggestion.item] = suggestion.reason.removeprefix("still yours: ")
        return result

    def release(self, item: str) -> None:
        """Give a leased item back to the queue (the annotator stopped before labelling it)."""
        self.leases.pop(str(item), None)

    def skip(self, item: str, annotator: str = "me") -> None:
        """``annotator`` passed over ``item``: it goes back to the queue for the others and
        is not offered to them again."""
        self.release(item)
        if str(item) in self.row_of:
            self.passed_over.setdefault(annotator, set()).add(self.row_of[str(item)])

    def _suggest(self, row: int, reason: str) -> Suggestion:
        # a second opinion is blind (the model learnt the first annotator's label), and so is
        # a held-out text (a shown guess would bias the very labels that measure the model)
        blind = self.ids[row] in self.labels or self.held_out[row]
        guesses = None if blind else self.guesses
        guess = None if guesses is None else str(guesses[row])
        return Suggestion(self.ids[row], self.texts[row], reason, guess)

    def _choose(self, count: int, annotator: str | None = None) -> list[tuple[int, str]]:
        available = self._available(annotator)
        if self.strategy == "random":
            rows = [int(r) for r in self.random_order if available[r]][:count]
            return [(r, "random order") for r in rows]
        if self.margins is None:
            chosen = self._cold_start(available, count)
            if len(chosen) == count:
                return chosen
            picked = {row for row, _ in chosen}
            rest = [int(r) for r in self.random_order if available[r] and r not in picked]
            why = f"no model yet ({self._labels_so_far()}); random order"
            return chosen + [(r, why) for r in rest[: count - len(chosen)]]
        return self._uncertain(available, count)

    def _labels_so_far(self) -> str:
        return f"labels so far: {', '.join(sorted(set(self.labels.values()))) or 'none'}"

    def _cold_start(self, available: np.ndarray, count: int) -> list[tuple[int, str]]:
        if self._cold is None:
            self._cold = self._cluster_representatives()
        chosen: list[tuple[int, str]] = []
        keys = set()
        for row, cluster, total in self._cold:
            if available[row] and self.keys[row] not in keys:
                chosen.append((row, f"cold start: cluster {cluster} of {total}"))
                keys.add(self.keys[row])
                if len(chosen) == count:
                    break
        return chosen

    def _cluster_representatives(self) -> list[tuple[int, int, int]]:
        """The text nearest each k-means centre (on a sample of at most 20,000 texts)."""
        from sklearn.cluster import MiniBatchKMeans

        sample = self.rng.permutation(len(self.ids))[:20_000]
        k = max(1, min(self.clusters, len(sample)))
        kmeans = MiniBatchKMeans(k, random_state=self.seed, n_init=3, batch_size=2048)
        assigned = kmeans.fit_predict(self.vectors[sample])
        similarity = np.asarray(self.vectors[sample] @ kmeans.cluster_centers_.T)
        representatives = []
        for cluster in range(k):
            members = np.flatnonzero(assigned == cluster)
            if len(members):
                best = members[similarity[members, cluster].argmax()]
                representatives.append((int(sample[best]), cluster + 1, k))
        return representatives

    def _uncertain(self, available: np.ndarray, count: int) -> list[tuple[int, str]]:
        """The most uncertain available rows, skipping near-copies (in vector space) of rows
        already in the batch or leased to anyone."""
        assert self.margins is not None
        margins = np.where(available, self.margins, np.inf)
        shortlist = min(len(margins), max(50, 10 * count))
        candidates = np.argpartition(margins, shortlist - 1)[:shortlist]
        candidates = candidates[np.argsort(margins[candidates], kind="stable")]
        candidates = candidates[np.isfinite(margins[candidates])]
        picked: list[int] = [self.row_of[item] for item in self.leases]
        chosen: list[tuple[int, str]] = []
        for row in candidates:
            if picked:
                similarity = (self.vectors[picked] @ self.vectors[row].T).toarray()
                if similarity.max() >= self.max_similarity:
                    continue
            chosen.append((int(row), self._unsure_reason(int(row))))
            picked.append(int(row))
            if len(chosen) == count:
                break
        return chosen

    def _unsure_reason(self, row: int) -> str:
        assert self.probabilities is not None
        high, low = self.probabilities[row, 1], self.probabilities[row, 0]
        return f"model unsure: {high:.2f} vs {low:.2f}"

    def state(self) -> dict[str, Any]:
        """Counts for a status line."""
        return {"labelled": len(self.labels), "unlabelled": len(self.ids) - len(self.labels),
                "leased": len(self._live_leases()), "model": self.model is not None,
                "trained_on": self.labels_at_training}  # fmt: skip
