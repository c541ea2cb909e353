"""Length-bucketed batches: every example once, similar lengths together, random batch order."""

from __future__ import annotations

import itertools
import random
from types import SimpleNamespace

import torch

from tunelab.training.sampling import (
    BucketedRandomSampler,
    bucketed_batches,
    use_bucketed_sampler,
)


def _lengths(count: int, seed: int = 0) -> list[int]:
    generator = random.Random(seed)
    return [generator.randint(1, 200) for _ in range(count)]


def test_every_example_appears_once_and_only_the_last_batch_is_short() -> None:
    lengths = _lengths(1003)
    batches = bucketed_batches(lengths, batch_size=32, window_batches=4)
    flat = [index for batch in batches for index in batch]
    assert sorted(flat) == list(range(1003))
    assert all(len(batch) == 32 for batch in batches[:-1])
    assert len(batches[-1]) == 1003 % 32


def test_batches_hold_similar_lengths_so_padding_shrinks() -> None:
    lengths = _lengths(2048)

    def padded(batches: list[list[int]]) -> int:
        return sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)

    generator = torch.Generator().manual_seed(0)
    random_order = torch.randperm(2048, generator=generator).tolist()
    plain = [random_order[start : start + 32] for start in range(0, 2048, 32)]
    bucketed = bucketed_batches(lengths, 32, window_batches=16, generator=generator)
    assert padded(bucketed) < 0.7 * padded(plain)


def test_batch_order_is_not_sorted_by_length() -> None:
    """The Trainer's grouping runs long to short within each megabatch; here the longest
    batch of a window lands anywhere, so batch maxima are not in descending runs."""
    lengths = _lengths(32 * 64)
    batches = bucketed_batches(lengths, 32, window_batches=64, generator=torch.Generator())
    maxima = [max(lengths[i] for i in batch) for batch in batches]
    descending_steps = sum(a >= b for a, b in itertools.pairwise(maxima))
    assert descending_steps < 0.75 * (len(maxima) - 1)  # sorted order would give all of them


def test_with_labels_every_batch_holds_the_mix_even_where_length_follows_the_label() -> None:
    """Positive texts are the long ones here: sorting by length alone makes one-label batches
    (MiniLM trained on such batches of Chinese reviews predicted one class)."""
    generator = random.Random(1)
    labels = [index % 2 for index in range(1024)]
    lengths = [generator.randint(1, 60) + 100 * label for label in labels]

    def worst_share(batches: list[list[int]]) -> float:
        return max(abs(sum(labels[i] for i in batch) / len(batch) - 0.5) for batch in batches)

    plain = bucketed_batches(lengths, 32, generator=torch.Generator().manual_seed(0))
    mixed = bucketed_batches(lengths, 32, generator=torch.Generator().manual_seed(0),
                             labels=labels)  # fmt: skip
    assert worst_share(plain) == 0.5  # some batch holds a single label
    assert worst_share(mixed) <= 2 / 32
    assert sorted(i for batch in mixed for i in batch) == list(range(1024))
    # within each label, neighbours in a batch are still close in length
    spread = [max(lengths[i] for i in batch if labels[i] == 1)
              - min(lengths[i] for i in batch if labels[i] == 1) for batch in mixed]  # fmt: skip
    assert max(spread) <= 10


def test_the_sampler_follows_the_global_seed_and_reshuffles_each_epoch() -> None:
    sampler = BucketedRandomSampler(_lengths(300), batch_size=16)
    torch.manual_seed(7)
    first = list(sampler)
    second = list(sampler)
    torch.manual_seed(7)
    assert list(sampler) == first
    assert second != first
    assert len(sampler) == 300


def _fake_trainer(strategy: str, columns: dict) -> SimpleNamespace:
    from datasets import Dataset

    trainer = SimpleNamespace(
        args=SimpleNamespace(train_batch_size=4, train_sampling_strategy=strategy),
        train_dataset=Dataset.from_dict(columns),
    )
    trainer._get_train_sampler = lambda dataset=None: "the Trainer's own"
    return trainer


def test_the_trainer_gets_buckets_from_the_length_column_it_drops_before_sampling() -> None:
    trainer = _fake_trainer("random", {"input_ids": [[1]] * 10, "length": list(range(10))})
    use_bucketed_sampler(trainer)
    without_length = trainer.train_dataset.remove_columns("length")  # what the Trainer passes
    sampler = trainer._get_train_sampler(without_length)
    assert isinstance(sampler, BucketedRandomSampler)
    assert sampler.lengths == list(range(10)) and sampler.batch_size == 4


def test_class_numbers_are_kept_mixed_and_other_labels_are_not_read() -> None:
    classes = _fake_trainer("random", {"input_ids": [[1]] * 6, "length": [1] * 6,
                                       "labels": [0, 1, 2, 0, 1, 2]})  # fmt: skip
    tags = _fake_trainer("random", {"input_ids": [[1]] * 6, "length": [1] * 6,
                                    "labels": [[0, 1]] * 6})  # fmt: skip
    scores = _fake_trainer("random", {"input_ids": [[1]] * 6, "length": [1] * 6,
                                      "labels": [0.5] * 6})  # fmt: skip
    found = []
    for trainer in (classes, tags, scores):
        use_bucketed_sampler(trainer)
        found.append(trainer._get_train_sampler().labels)
    assert found == [[0, 1, 2, 0, 1, 2], None, None]


def test_tasks_that_ask_for_another_order_or_measure_no_lengths_keep_the_trainers_sampler():
    sequential = _fake_trainer("sequential", {"input_ids": [[1]] * 10, "length": [1] * 10})
    unmeasured = _fake_trainer("random", {"input_ids": [[1]] * 10})
    for trainer in (sequential, unmeasured):
        use_bucketed_sampler(trainer)
        assert trainer._get_train_sampler() == "the Trainer's own"
