"""Perceptual hashes of images, and the near-duplicate pairs among many images.

A perceptual hash (pHash) is 64 bits that stay nearly the same when an image is re-encoded,
resized or lightly retouched: the signs of the lowest 8x8 frequencies of its 32x32 grey
thumbnail (a 2-D discrete cosine transform) against their median. Two images whose hashes
differ in at most :data:`NEAR_DUPLICATE_BITS` bits are candidates; they are near duplicates
when their 16x16 grey thumbnails also agree (cosine similarity of the thumbnails less their
mean, at least :data:`MIN_SIMILARITY`). The hash alone is too coarse for sparse pictures: on
rendered characters it paired 主 with 末 wherever the two sat alike on the page.

Finding those pairs among 50,000 hashes must not compare every pair (1.25 billion):
:func:`near_hash_pairs` uses multi-index hashing. Split the bits into ``d + 1`` segments; two
hashes within ``d`` bits of each other agree exactly on at least one segment (pigeonhole), so
only hashes that share a segment's value are compared. Segments mix evenly split bits with
lopsided ones (most images dark at the top), so buckets stay small on real images; the
rare large bucket is compared pair by pair in blocks of bounded memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

HASH_SIDE = 8  # 8x8 frequencies: 64 bits
THUMBNAIL_SIDE = 32
NEAR_DUPLICATE_BITS = 6  # of 64; measured on re-encoded, resized and brightened copies
CHECK_SIDE = 16  # side of the grey thumbnail that confirms a candidate pair
MIN_SIMILARITY = 0.95  # copies: 1% below 0.96; different characters: 90% below 0.92
FLAT_SPREAD = 2.0  # a thumbnail whose grey levels vary less is blank: compared by its mean
DIRECT_COMPARE = 128  # buckets up to this size are compared offset by offset, together
BLOCK_ELEMENTS = 4_000_000  # distances computed at once in a large bucket
MAX_PAIRS = 2_000_000  # past this many pairs the search stops and says it was cut short
CHECK_CHUNK = 1_000_000  # candidate pairs confirmed at once


def _cosine_basis(side: int) -> np.ndarray:
    k = np.arange(side)
    return np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * side))


_BASIS = _cosine_basis(THUMBNAIL_SIDE)[:HASH_SIDE]  # only the lowest frequencies are kept
_BIT_VALUES = np.left_shift(np.uint64(1), np.arange(HASH_SIDE * HASH_SIDE, dtype=np.uint64))


def perceptual_hash(image: Any) -> int:
    """The 64-bit pHash of a ``PIL.Image`` (any mode): bit ``i`` is set where the ``i``-th of
    the 8x8 lowest cosine frequencies of its 32x32 grey thumbnail is above their median."""
    from PIL import Image

    grey = image.convert("L").resize((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.BILINEAR)
    frequencies = _BASIS @ np.asarray(grey, dtype=np.float64) @ _BASIS.T
    bits = frequencies.reshape(-1) > np.median(frequencies)
    return int(_BIT_VALUES[bits].sum(dtype=np.uint64))


def check_thumbnail(image: Any) -> np.ndarray:
    """The 16x16 grey thumbnail (``uint8``) that confirms a near-duplicate candidate."""
    from PIL import Image

    grey = image.convert("L").resize((CHECK_SIDE, CHECK_SIDE), Image.Resampling.BILINEAR)
    return np.asarray(grey, dtype=np.uint8)


_BYTE_BITS = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bits that differ between the ``uint64`` hashes ``a`` and ``b`` (element-wise)."""
    x = np.bitwise_xor(a, b)
    if hasattr(np, "bitwise_count"):  # numpy 2
        return np.bitwise_count(x).astype(np.int64)
    as_bytes = np.ascontiguousarray(x).view(np.uint8).reshape(*x.shape, 8)
    return _BYTE_BITS[as_bytes].sum(axis=-1, dtype=np.int64)


@dataclass
class HashPairs:
    """Pairs ``(first[k], second[k])`` of positions in the searched hashes, ``first < second``,
    whose hashes differ in ``distance[k]`` bits (at least 1: equal hashes are no pair)."""

    first: np.ndarray
    second: np.ndarray
    distance: np.ndarray
    compared: int  # hash pairs whose distance was computed: the search's cost
    complete: bool  # False when MAX_PAIRS cut the search short


class _Search:
    def __init__(self, values: np.ndarray, max_distance: int) -> None:
        self.values, self.max_distance = values, max_distance
        self.found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.count = self.compared = 0

    def full(self) -> bool:
        if self.count >= MAX_PAIRS and len(self.found) > 1:
            self.found = [_unique_pairs(*_joined(self.found))]
            self.count = len(self.found[0][0])
        return self.count >= MAX_PAIRS

    def keep(self, first: np.ndarray, second: np.ndarray, distance: np.ndarray) -> None:
        self.compared += len(first)
        near = distance <= self.max_distance
        if near.any():
            self.found.append((first[near], second[near], distance[near]))
            self.count += int(near.sum())

    def small_buckets(self, ordered: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> None:
        """Each member against the ones after it in its bucket, one offset at a time."""
        ends = np.repeat(starts + sizes, sizes)
        position = np.arange(len(ordered))
        offset, active = 1, position[np.repeat(sizes <= DIRECT_COMPARE, sizes)]
        active = active[active + 1 < ends[active]]
        while len(active):
            first, second = ordered[active], ordered[active + offset]
            self.keep(first, second, hamming(self.values[first], self.values[second]))
            if self.full():
                return
            offset += 1
            active = active[active + offset < ends[active]]

    def large_bucket(self, members: np.ndarray) -> None:
        """Every pair of a large bucket, a block of rows at a time (bounded memory)."""
        values = self.values[members]
        block = max(1, BLOCK_ELEMENTS // len(members))
        for start in range(0, len(members) - 1, block):
            rows = np.arange(start, min(start + block, len(members) - 1))
            distance = hamming(values[rows, None], values[None, start:])
            row, column = np.nonzero(np.triu(np.ones_like(distance, dtype=bool), 1))
            self.keep(members[rows[row]], members[start + column], distance[row, column])
            if self.full():
                return

    def run(self) -> None:
        for segment in _segments(self.values, self.max_distance + 1):
            keys = self.values & np.uint64(sum(1 << int(b) for b in segment))
            order = np.argsort(keys, kind="stable")
            ordered, keys = order, keys[order]
            starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
            sizes = np.diff(np.r_[starts, len(keys)])
            self.small_buckets(ordered, starts, sizes)
            if self.full():
                return
            large = sizes > DIRECT_COMPARE
            for start, size in zip(starts[large], sizes[large], strict=True):
                if self.full():
                    return
                self.large_bucket(ordered[start : start + size])
            if self.full():
                return


def _segments(values: np.ndarray, parts: int) -> list[np.ndarray]:
    """The hash bits dealt into ``parts`` segments, the most evenly split bits first, so that
    no segment is all bits most images share (a blank top half): one big bucket."""
    ones = ((values[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)).mean(axis=0)
    by_balance = np.argsort(np.abs(ones - 0.5), kind="stable")
    return [by_balance[i::parts] for i in range(parts)]


def near_hash_pairs(hashes: np.ndarray, max_distance: int = NEAR_DUPLICATE_BITS) -> HashPairs:
    """The pairs of distinct hashes within ``max_distance`` bits of each other.

    Args:
        hashes: distinct ``uint64`` hashes (group equal ones first: they are duplicates
            without a search, and a thousand equal hashes would be half a million pairs).
        max_distance: the most bits in which a pair may differ.

    Returns:
        Each pair once, by position in ``hashes``; at most :data:`MAX_PAIRS` of them.
    """
    values = np.asarray(hashes, dtype=np.uint64)
    search = _Search(values, max_distance)
    if len(values) > 1:
        search.run()
    if not search.found:
        empty = np.zeros(0, dtype=np.int64)
        return HashPairs(empty, empty, empty, search.compared, True)
    complete = not search.full()
    first, second, distance = _unique_pairs(*_joined(search.found))
    kept = slice(0, MAX_PAIRS)
    return HashPairs(first[kept], second[kept], distance[kept], search.compared, complete)


def _joined(found: Sequence[tuple[np.ndarray, ...]]) -> list[np.ndarray]:
    return [np.concatenate(parts) for parts in zip(*found, strict=True)]


def _unique_pairs(
    first: np.ndarray, second: np.ndarray, distance: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each pair once, its lower position first: a pair that agrees on several segments is
    found once per segment."""
    low, high = np.minimum(first, second), np.maximum(first, second)
    _, unique = np.unique(low * (int(high.max()) + 1) + high, return_index=True)
    return low[unique], high[unique], distance[unique]


@dataclass
class ImagePairs:
    """Near-duplicate pairs of images ``(first[k], second[k])``, ``first < second``, by
    position: ``bits`` apart in their hashes and ``similarity`` of their thumbnails."""

    first: np.ndarray
    second: np.ndarray
    bits: np.ndarray
    similarity: np.ndarray
    compared: int  # hash pairs compared in the search
    checked: int  # candidate image pairs whose thumbnails were compared
    complete: bool


class _Confirmed:
    """Candidate pairs in, the ones whose thumbnails agree kept."""

    def __init__(self, thumbnails: np.ndarray, min_similarity: float) -> None:
        flat = thumbnails.reshape(len(thumbnails), -1).astype(np.float32)
        self.means = flat.mean(axis=1)
        centred = flat - self.means[:, None]
        norms = np.linalg.norm(centred, axis=1)
        self.blank = centred.std(axis=1) < FLAT_SPREAD
        self.unit = centred / np.where(self.blank, 1.0, norms)[:, None]
        self.unit[self.blank] = 0.0
        self.min_similarity = min_similarity
        self.kept: list[tuple[np.ndarray, ...]] = []
        self.checked = 0

    def check(self, first: np.ndarray, second: np.ndarray, bits: np.ndarray) -> None:
        for start in range(0, len(first), CHECK_CHUNK):
            a, b = first[start : start + CHECK_CHUNK], second[start : start + CHECK_CHUNK]
            similarity = np.einsum("ij,ij->i", self.unit[a], self.unit[b])
            # two blank images are duplicates when their grey levels are close
            both = self.blank[a] & self.blank[b]
            close = np.abs(self.means[a] - self.means[b]) <= 4 * FLAT_SPREAD
            similarity = np.where(both, close.astype(np.float32), similarity)
            keep = similarity >= self.min_similarity
            self.checked += len(a)
            if keep.any():
                kept = (a[keep], b[keep], bits[start : start + CHECK_CHUNK][keep])
                self.kept.append((*kept, similarity[keep]))


def near_duplicate_pairs(
    hashes: np.ndarray,
    thumbnails: np.ndarray,
    max_distance: int = NEAR_DUPLICATE_BITS,
    min_similarity: float = MIN_SIMILARITY,
) -> ImagePairs:
    """The pairs of images whose hashes are within ``max_distance`` bits and whose
    thumbnails agree: images sharing a hash, and the images of near hashes, confirmed.

    Args:
        hashes: one ``uint64`` pHash per image (:func:`perceptual_hash`).
        thumbnails: one 16x16 ``uint8`` thumbnail per image (:func:`check_thumbnail`).

    Returns:
        Each pair once, by image position.
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    confirmed = _Confirmed(np.asarray(thumbnails), min_similarity)
    values, inverse = np.unique(hashes, return_inverse=True)
    order = np.argsort(inverse, kind="stable")  # the images of each hash value, together
    starts = np.searchsorted(inverse[order], np.arange(len(values)))
    sizes = np.diff(np.r_[starts, len(order)])
    # images sharing a hash: each against the ones after it, one offset at a time
    ends = np.repeat(starts + sizes, sizes)
    offset, active = 1, np.flatnonzero(np.arange(len(order)) + 1 < ends)
    while len(active):
        confirmed.check(order[active], order[active + offset], np.zeros(len(active), np.int64))
        offset += 1
        active = active[active + offset < ends[active]]
    # images of two near hash values: every image of one against every image of the other
    pairs = near_hash_pairs(values, max_distance)
    counts = sizes[pairs.first] * sizes[pairs.second]
    bounds = np.r_[0, np.cumsum(counts)]
    for low in range(0, len(counts), CHECK_CHUNK):
        chunk = slice(low, low + CHECK_CHUNK)
        pair = np.repeat(np.arange(len(counts))[chunk], counts[chunk])
        within = np.arange(bounds[chunk.start], bounds[min(chunk.stop, len(counts))])
        within -= np.repeat(bounds[:-1][chunk], counts[chunk])
        across = sizes[pairs.second][pair]
        first = order[starts[pairs.first][pair] + within // across]
        second = order[starts[pairs.second][pair] + within % across]
        confirmed.check(first, second, pairs.distance[pair])
    if not confirmed.kept:
        empty = np.zeros(0, dtype=np.int64)
        return ImagePairs(
            empty, empty, empty, np.zeros(0), pairs.compared, confirmed.checked, pairs.complete
        )
    first, second, bits, similarity = _joined(confirmed.kept)
    low, high = np.minimum(first, second), np.maximum(first, second)
    return ImagePairs(
        low, high, bits, similarity.round(4), pairs.compared, confirmed.checked, pairs.complete
    )
