"""A seeded ratio split, for datasets without an official one (image folders, LSUN, the embedded set) or instead
of it: `test_fraction` of the images, drawn by a permutation seeded with `seed`, are the test part, the others the
training part. The parts are disjoint, their sizes exact, and each keeps the dataset's file order."""

import numpy as np

PARTS = ("train", "test")


def part_indices(count: int, test_fraction: float, seed: int, part: str) -> np.ndarray:
    """The sorted indices of `part` (PARTS) of `count` images."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    order = np.random.default_rng(seed).permutation(count)
    tests = round(count * test_fraction)
    return np.sort(order[:tests] if part == "test" else order[tests:])


def split(dataset, name: str, part: str, test_fraction: float, seed: int):
    """`part` of `dataset` (an ArrayDataset or ImageFileDataset of every image of dataset `name`)."""
    indices = part_indices(len(dataset), test_fraction, seed, part)
    test = round(100 * test_fraction)
    description = (f"{name} {part} part, {len(indices)} of {len(dataset)} images (a seeded {100 - test}/{test} "
                   f"split, seed {seed})")
    return dataset.subset(indices, description)
