"""IS, FID, KID, precision / recall, SWD: parity with the torch-fidelity fixture, closed forms, invariants."""

import importlib
import json

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA

from sagan.metrics.fid import fid, frechet_distance, gaussian_stats
from sagan.metrics.inception_score import inception_score
from sagan.metrics.kid import kid
from sagan.metrics.precision_recall import density_coverage, precision_recall
from sagan.metrics.stats import FeatureStats, check_compatible, load_stats, save_stats, summarise
from sagan.metrics.swd import SWDDescriptors, laplacian_pyramid, swd

FIXTURES = SHARED_DATA.parent / "metrics-fixtures"
needs_fixtures = pytest.mark.skipif(not (FIXTURES / "reference_values.json").is_file(),
                                    reason="needs ../shared/metrics-fixtures")


@pytest.fixture(scope="module")
def fixture():
    ref = json.loads((FIXTURES / "reference_values.json").read_text())
    return ref, {name: np.load(FIXTURES / f"{name}.npy") for name in ("feats_gen", "feats_real",
                                                                        "logits_unbiased_for_is")}


@needs_fixtures
def test_fid_matches_reference(fixture):
    ref, a = fixture
    # One 2048-d evaluation (tens of seconds on a busy 2-core machine); from (mu, sigma) as the CLI does.
    from_stats = fid(gaussian_stats(a["feats_gen"]), gaussian_stats(a["feats_real"]))
    assert from_stats == pytest.approx(ref["fid(feats_gen, feats_real)"], rel=1e-5)


@needs_fixtures
def test_kid_matches_reference_with_the_same_subsets(fixture):
    ref, a = fixture
    want = ref["kid(feats_gen, feats_real, subsets=10, subset_size=1000, seed=2020)"]
    mean, std = kid(a["feats_gen"], a["feats_real"], subsets=10, subset_size=1000, seed=2020)
    assert mean == pytest.approx(want["mean"], abs=1e-6) and std == pytest.approx(want["std"], abs=1e-6)
    other, _ = kid(a["feats_gen"], a["feats_real"], subsets=1, subset_size=1000, seed=1)
    assert other != pytest.approx(want["mean"], abs=1e-7)  # the seed picks the subsets


@needs_fixtures
@pytest.mark.parametrize("shuffle", [False, True])
def test_inception_score_matches_reference(fixture, shuffle):
    ref, a = fixture
    want = ref[f"inception_score(logits_unbiased_for_is, splits=10, shuffle={shuffle}"
               + (", seed=2020)" if shuffle else ")")]
    mean, std = inception_score(a["logits_unbiased_for_is"], splits=10, shuffle=shuffle, seed=2020)
    assert mean == pytest.approx(want["mean"], rel=1e-5) and std == pytest.approx(want["std"], rel=1e-5)


def test_fid_of_two_gaussians_has_the_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    s1, s2 = a @ a.T + np.eye(4), b @ b.T + np.eye(4)
    # Diagonal covariances: tr sqrt(S1 S2) = sum sqrt(d1 d2).
    d1, d2 = np.diag([1.0, 2.0, 3.0, 4.0]), np.diag([4.0, 1.0, 9.0, 0.25])
    want = ((mu1 - mu2) ** 2).sum() + np.trace(d1) + np.trace(d2) - 2 * np.sqrt(np.diag(d1) * np.diag(d2)).sum()
    assert frechet_distance(mu1, d1, mu2, d2) == pytest.approx(want, rel=1e-12)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0, abs=1e-9)
    # Large samples of two Gaussians approach the distance of their parameters.
    x = rng.multivariate_normal(mu1, s1, size=200_000)
    y = rng.multivariate_normal(mu2, s2, size=200_000)
    assert fid(x, y) == pytest.approx(frechet_distance(mu1, s1, mu2, s2), rel=0.02)


def test_inception_score_of_one_hot_predictions_is_the_number_of_classes():
    logits = np.full((1000, 10), -1e4)
    logits[np.arange(1000), np.arange(1000) % 10] = 0  # confident and uniform over 10 classes
    mean, std = inception_score(logits, splits=10)
    assert mean == pytest.approx(10, rel=1e-9) and std == pytest.approx(0, abs=1e-9)
    assert inception_score(np.zeros((100, 10)))[0] == pytest.approx(1)  # no confidence: 1


def test_kid_is_near_zero_for_identical_sets_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 16))
    same, _ = kid(x, x, subsets=5, subset_size=500)
    shifted, _ = kid(x + 0.5, x, subsets=5, subset_size=500)
    assert abs(same) < 0.05 * shifted  # unbiased: zero in expectation, so small either side of 0


def test_precision_recall_and_density_coverage():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(300, 8))
    assert precision_recall(real, real) == (1.0, 1.0)
    assert precision_recall(real, real + 100) == (0.0, 0.0)
    # A generator covering half the real modes: full precision, recall about 1/2.
    modes = np.concatenate([rng.normal(size=(150, 8)) * 0.1, rng.normal(size=(150, 8)) * 0.1 + 10])
    gen = rng.normal(size=(150, 8)) * 0.1
    precision, recall = precision_recall(modes, gen)
    assert precision > 0.7 and 0.35 < recall < 0.6
    density, coverage = density_coverage(modes, gen)
    assert 0.4 < coverage < 0.6 and density > 0.5
    assert density_coverage(real, real + 100) == (0.0, 0.0)


def test_precision_recall_blocks_give_the_same_answer(monkeypatch):
    pr = importlib.import_module("sagan.metrics.precision_recall")  # the module, not the function of that name

    rng = np.random.default_rng(1)
    real, gen = rng.normal(size=(200, 5)), rng.normal(size=(170, 5)) + 0.3
    whole = pr.precision_recall(real, gen)
    monkeypatch.setattr(pr, "BLOCK_ELEMENTS", 1000)  # 5 rows per block
    assert pr.precision_recall(real, gen) == whole


def _smooth_images(n: int, seed: int, noise: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.nn.functional.interpolate(torch.rand(n, 3, 8, 8, generator=g), size=64, mode="bilinear")
    x = base * 200 + 20 + noise * torch.randn(n, 3, 64, 64, generator=g)
    return x.clamp(0, 255).to(torch.uint8)


def test_swd_is_zero_for_the_same_images_and_grows_with_a_shift():
    x = _smooth_images(32, 0)
    assert [p.shape[-1] for p in laplacian_pyramid(x.double(), 3)] == [64, 32, 16]
    a = SWDDescriptors(seed=0)(x)
    assert set(a) == {"level64", "level32", "level16"} and a["level64"].shape == (32 * 128, 3 * 49)
    assert swd(a, SWDDescriptors(seed=0)(x)) == {"swd_64": 0.0, "swd_32": 0.0, "swd_16": 0.0, "swd": 0.0}
    same = swd(a, SWDDescriptors(seed=1)(_smooth_images(32, 1)))
    noisy = swd(a, SWDDescriptors(seed=1)(_smooth_images(32, 1, noise=20)))
    assert noisy["swd_64"] > 2 * same["swd_64"] > 0 and noisy["swd"] > same["swd"]  # noise is fine detail


def test_stats_round_trip_and_refuse_other_preprocessing(tmp_path):
    rng = np.random.default_rng(0)
    meta = {"extractor": "inception", "weights_sha256": "abc", "preprocessing": "tf1-bilinear-299"}
    stats = summarise({"pool3": rng.normal(size=(50, 4)), "logits": rng.normal(size=(50, 3))},
                      meta | {"source": {"folder": "x"}, "count": 50}, max_features=20)
    assert stats.features("pool3").shape == (20, 4) and "logits.features" not in stats.arrays
    save_stats(tmp_path / "s.npz", {"inception": stats})
    loaded = load_stats(tmp_path / "s.npz")["inception"]
    assert loaded.meta == stats.meta
    np.testing.assert_array_equal(loaded.gaussian("pool3")[1], stats.gaussian("pool3")[1])
    check_compatible(loaded, meta, "test")
    with pytest.raises(ValueError, match="preprocessing 'tf1-bilinear-299' but .* 'clean-bicubic-299'"):
        check_compatible(loaded, meta | {"preprocessing": "clean-bicubic-299"}, "test")
    assert isinstance(loaded, FeatureStats)
