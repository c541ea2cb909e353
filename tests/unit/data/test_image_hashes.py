"""Perceptual hashes survive re-encoding and resizing, and the near-pair search finds exactly
the pairs a comparison of every pair finds, without comparing every pair."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance

from tunelab.data import image_hashes
from tunelab.data.image_hashes import (
    NEAR_DUPLICATE_BITS,
    hamming,
    near_hash_pairs,
    perceptual_hash,
)


def shapes(seed: int, side: int = 64) -> Image.Image:
    """A picture of a few random rectangles and ellipses on a random background."""
    rng = np.random.default_rng(seed)
    colour = lambda: tuple(int(v) for v in rng.integers(0, 255, 3))  # noqa: E731
    image = Image.new("RGB", (side, side), colour())
    draw = ImageDraw.Draw(image)
    for _ in range(4):
        x, y = (int(v) for v in rng.integers(0, side * 3 // 4, 2))
        w, h = (int(v) for v in rng.integers(side // 8, side // 2, 2))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x, y, x + w, y + h], colour())
    return image


def brute_force_pairs(hashes: np.ndarray, max_distance: int) -> set[tuple[int, int]]:
    distance = hamming(hashes[:, None], hashes[None, :])
    first, second = np.nonzero(np.triu(distance <= max_distance, 1))
    return set(zip(first.tolist(), second.tolist(), strict=True))


def found(pairs: image_hashes.HashPairs) -> set[tuple[int, int]]:
    return set(zip(pairs.first.tolist(), pairs.second.tolist(), strict=True))


def test_copies_hash_near_the_original_and_other_pictures_far():
    originals = [shapes(seed) for seed in range(40)]
    hashes = [perceptual_hash(image) for image in originals]
    for image, value in zip(originals[:10], hashes[:10], strict=True):
        encoded = io.BytesIO()
        image.save(encoded, "JPEG", quality=75)
        copies = [
            Image.open(io.BytesIO(encoded.getvalue())),
            image.resize((40, 40)),
            ImageEnhance.Brightness(image).enhance(1.1),
            image.convert("L"),
        ]
        for copy in copies:
            assert bin(perceptual_hash(copy) ^ value).count("1") <= NEAR_DUPLICATE_BITS
    values = np.array(hashes, dtype=np.uint64)
    assert not brute_force_pairs(values, NEAR_DUPLICATE_BITS)  # 40 different pictures


def test_hamming_counts_bits_with_and_without_numpys_popcount(monkeypatch):
    a = np.array([0, 0xFF, 2**64 - 1], dtype=np.uint64)
    b = np.array([1, 0x0F, 0], dtype=np.uint64)
    assert hamming(a, b).tolist() == [1, 4, 64]
    monkeypatch.delattr(np, "bitwise_count", raising=False)  # numpy 1.x
    assert hamming(a, b).tolist() == [1, 4, 64]


def random_hashes(rng: np.random.Generator, n: int) -> np.ndarray:
    high = rng.integers(0, 2**32, size=n, dtype=np.uint64) << np.uint64(32)
    return high | rng.integers(0, 2**32, size=n, dtype=np.uint64)


def with_planted_pairs(rng: np.random.Generator, hashes: np.ndarray, count: int) -> np.ndarray:
    """``count`` hashes replaced by copies of others with 1 to 6 bits flipped."""
    for i in range(count):
        copy = int(hashes[i])
        for bit in rng.choice(64, size=int(rng.integers(1, 7)), replace=False):
            copy ^= 1 << int(bit)
        hashes[-1 - i] = copy
    return hashes


@pytest.mark.parametrize("blank_share", [0.0, 0.6])
def test_the_search_finds_what_comparing_every_pair_finds(blank_share):
    rng = np.random.default_rng(1)
    hashes = random_hashes(rng, 3000)
    # many pictures with a blank region: a third of their bits are always zero
    hashes[rng.random(len(hashes)) < blank_share] &= np.uint64(0x0000_00FF_FFFF_FFFF)
    hashes = np.unique(with_planted_pairs(rng, hashes, 200))
    pairs = near_hash_pairs(hashes)
    assert found(pairs) == brute_force_pairs(hashes, NEAR_DUPLICATE_BITS)
    assert len(found(pairs)) >= 150 and pairs.complete
    assert (pairs.distance == hamming(hashes[pairs.first], hashes[pairs.second])).all()
    assert (pairs.distance >= 1).all() and (pairs.first < pairs.second).all()


@pytest.mark.parametrize(("blank_share", "share_compared"), [(0.0, 0.02), (0.6, 0.1)])
def test_the_search_compares_a_small_share_of_all_pairs(blank_share, share_compared):
    """50,000 images: 1.25 billion pairs; the search computes a few percent of them at most."""
    rng = np.random.default_rng(2)
    n = 50_000
    hashes = random_hashes(rng, n)
    hashes[rng.random(n) < blank_share] &= np.uint64(0x0000_00FF_FFFF_FFFF)
    hashes = with_planted_pairs(rng, hashes, 100)
    unique = np.unique(hashes)
    pairs = near_hash_pairs(unique)
    planted = {
        tuple(sorted((int(np.searchsorted(unique, hashes[i])),
                      int(np.searchsorted(unique, hashes[-1 - i])))))
        for i in range(100)
    }  # fmt: skip
    assert planted <= found(pairs)
    assert pairs.compared < share_compared * n * n / 2


def test_too_many_pairs_cut_the_search_short_and_say_so(monkeypatch):
    monkeypatch.setattr(image_hashes, "MAX_PAIRS", 50)
    rng = np.random.default_rng(3)
    hashes = np.unique(rng.integers(0, 2**12, size=2000, dtype=np.uint64))  # all close
    pairs = near_hash_pairs(hashes)
    assert not pairs.complete and len(pairs.first) == 50


def test_no_or_one_hash_has_no_pairs():
    for hashes in (np.zeros(0, dtype=np.uint64), np.ones(1, dtype=np.uint64)):
        pairs = near_hash_pairs(hashes)
        assert len(pairs.first) == 0 and pairs.complete and pairs.compared == 0


# -- from hashes to images: candidates confirmed by their thumbnails ---------------------


def test_images_of_near_hashes_are_paired_only_when_their_thumbnails_agree():
    rng = np.random.default_rng(4)
    picture = rng.integers(0, 256, (16, 16), dtype=np.uint8)
    other = rng.integers(0, 256, (16, 16), dtype=np.uint8)
    brighter = np.clip(picture.astype(int) + 20, 0, 255).astype(np.uint8)
    blank, blank_too, grey = (np.full((16, 16), v, dtype=np.uint8) for v in (250, 247, 128))
    thumbnails = np.stack([picture, brighter, other, picture, blank, blank_too, grey])
    near = 0b1011  # 3 bits from 0
    far = 2**64 - 1  # 61 bits and more from the others
    hashes = np.array([0, 0, 0, near, far, far, far], dtype=np.uint64)
    pairs = image_hashes.near_duplicate_pairs(hashes, thumbnails)
    found_pairs = dict(zip(found(pairs), pairs.bits.tolist(), strict=True))
    # the picture, its brighter copy and its copy under a near hash; not the other picture
    # that shares the hash; the two near-white blanks but not the grey one
    assert found_pairs == {(0, 1): 0, (0, 3): 3, (1, 3): 3, (4, 5): 0}
    assert pairs.checked == 3 + 3 + 3  # pairs sharing a hash, then 3 images x the near one
    assert (pairs.similarity >= image_hashes.MIN_SIMILARITY).all()
