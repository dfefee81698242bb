"""The FID Inception network and its preprocessing: reference key format, parity with torch-fidelity's outputs
(../shared/metrics-fixtures), the TF1 resize against hand-computed values."""

import hashlib
import socket

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import SHARED_DATA, needs_cuda

from sagan.errors import ConfigError, MissingPathError
from sagan.metrics import FIDInceptionV3, InceptionFeatures
from sagan.metrics.preprocess import preprocess, resize_clean_bicubic, resize_tf1_bilinear

FIXTURES = SHARED_DATA.parent / "metrics-fixtures"
needs_fixtures = pytest.mark.skipif(not (FIXTURES / "fid_inception_random_seed0.pth").is_file(),
                                    reason="needs ../shared/metrics-fixtures")


def random_state(seed: int) -> dict:
    """Seeded random weights with non-trivial batch norm statistics, in the published format."""
    g = torch.Generator().manual_seed(seed)
    state = FIDInceptionV3().state_dict()
    for key, value in state.items():
        if key.endswith("running_var"):
            state[key] = torch.rand(value.shape, generator=g) + 0.5
        elif key.endswith(("running_mean", "bn.bias")):
            state[key] = torch.randn(value.shape, generator=g) * 0.1
        elif key.endswith("bn.weight"):
            state[key] = torch.rand(value.shape, generator=g) + 0.5
        elif value.dim() == 4:
            state[key] = torch.randn(value.shape, generator=g) * (2 / value[0].numel()) ** 0.5
        else:
            state[key] = torch.randn(value.shape, generator=g) * 0.05
    return state


def nchw(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2)


def test_state_dict_is_the_published_format():
    state = FIDInceptionV3().state_dict()
    assert len(state) == 472
    assert not any("num_batches_tracked" in k for k in state)
    assert state["fc.weight"].shape == (1008, 2048) and state["fc.bias"].shape == (1008,)
    assert {"Conv2d_1a_3x3.conv.weight", "Mixed_5b.branch1x1.bn.running_var", "Mixed_7c.branch_pool.bn.bias",
            "Mixed_6e.branch7x7dbl_5.conv.weight"} <= set(state)
    assert not any(k.startswith("AuxLogits") for k in state)


@pytest.fixture(scope="module")
def state():
    return random_state(1)


def test_prepared_network_computes_the_same_features(state):
    """Folded batch norm, merged 1x1 convolutions, fused ReLU and channels_last change rounding only."""
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    fast, plain = InceptionFeatures(state)(images), InceptionFeatures(state, fast=False)(images)
    for key in ("pool3", "logits", "logits_unbiased"):
        assert fast[key].dtype == torch.float32
        torch.testing.assert_close(fast[key], plain[key], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(plain["logits"], plain["logits_unbiased"] + state["fc.bias"], atol=0, rtol=0)
    bf16 = InceptionFeatures(state, precision="bf16")
    assert bf16.preprocessing == "tf1-bilinear-299-bf16"  # never mixed with float32 statistics
    approx = bf16(images)["pool3"]
    assert approx.dtype == torch.float32
    assert (approx - plain["pool3"]).norm() < 0.02 * plain["pool3"].norm()


@needs_cuda
def test_cuda_matches_the_cpu_reference(state):
    """On a GPU both paths keep IEEE float32 (no TF32) and agree with the CPU's reference computation."""
    images = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    want = InceptionFeatures(state, fast=False)(images)
    for fast in (True, False):
        got = InceptionFeatures(state, device="cuda", fast=fast)(images)
        for key in ("pool3", "logits", "logits_unbiased"):
            assert got[key].device.type == "cuda"
            torch.testing.assert_close(got[key].cpu(), want[key], atol=1e-4, rtol=1e-4)
    approx = InceptionFeatures(state, device="cuda", precision="bf16")(images)["pool3"].cpu()
    assert (approx - want["pool3"]).norm() < 0.02 * want["pool3"].norm()


@needs_fixtures
@pytest.mark.parametrize("size", [64, 32])
def test_features_match_torch_fidelity(reference_model, size):
    images = nchw(np.load(FIXTURES / f"images_{size}.npy"))
    out = reference_model(images)
    assert out["pool3"].shape == (len(images), 2048) and out["logits"].shape == (len(images), 1008)
    ref = {k: torch.from_numpy(np.load(FIXTURES / f"ref_{size}_{k}.npy")) for k in out}
    torch.testing.assert_close(out["pool3"], ref["pool3"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out["logits"], ref["logits"], atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(out["logits_unbiased"], ref["logits_unbiased"], atol=1e-3, rtol=1e-4)


@needs_fixtures
def test_reference_path_matches_torch_fidelity_exactly():
    """fast=False is the reference computation itself: same operations in the same order, equal to the last bit on
    the CPU the fixture was made on (1e-5 leaves room for another CPU's convolution kernels)."""
    images = nchw(np.load(FIXTURES / "images_32.npy"))[:4]
    out = InceptionFeatures(FIXTURES / "fid_inception_random_seed0.pth", fast=False)(images)
    torch.testing.assert_close(out["pool3"], torch.from_numpy(np.load(FIXTURES / "ref_32_pool3.npy"))[:4],
                               atol=1e-5, rtol=1e-5)


@needs_fixtures
def test_weights_identity_and_preprocessing_label(reference_model):
    digest = hashlib.sha256((FIXTURES / "fid_inception_random_seed0.pth").read_bytes()).hexdigest()
    assert reference_model.weights_sha256 == digest
    assert reference_model.preprocessing == "tf1-bilinear-299"
    assert not reference_model.training


@needs_fixtures
def test_grey_images_are_repeated_to_three_channels(reference_model):
    grey = nchw(np.load(FIXTURES / "images_32.npy"))[:2, :1]
    torch.testing.assert_close(reference_model(grey)["pool3"], reference_model(grey.repeat(1, 3, 1, 1))["pool3"])


@pytest.fixture(scope="module")
def reference_model():
    return InceptionFeatures(FIXTURES / "fid_inception_random_seed0.pth")


def test_provided_weights_are_labelled_by_content(state):
    label = InceptionFeatures(state, fast=False).weights_sha256
    assert label.startswith("provided-state-dict-")
    assert InceptionFeatures(dict(state), fast=False).weights_sha256 == label
    other = dict(state, **{"fc.bias": state["fc.bias"] + 1})
    assert InceptionFeatures(other, fast=False).weights_sha256 != label
    assert InceptionFeatures(state, resize="clean", fast=False).preprocessing == "clean-bicubic-299"


def test_bad_inputs_and_weights_are_refused(state):
    model = InceptionFeatures(state, fast=False)
    with pytest.raises(ValueError, match="uint8"):
        model(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        model(torch.zeros(1, 4, 32, 32, dtype=torch.uint8))
    with pytest.raises(ConfigError, match="resize must be one of tf1, clean"):
        InceptionFeatures(state, resize="bilinear")
    incomplete = {k: v for k, v in state.items() if k != "fc.bias"}
    with pytest.raises(ConfigError, match="not FID Inception weights.*fc.bias"):
        InceptionFeatures(incomplete)


def test_tf1_resize_upsamples_without_half_pixel_offset():
    x = torch.tensor([[0.0, 30.0], [60.0, 90.0]]).view(1, 1, 2, 2)
    # output pixel i samples input coordinate i * 2/3: 0, 2/3, 4/3 (clamped to the last pixel)
    expected = torch.tensor([[0.0, 20.0, 30.0], [40.0, 60.0, 70.0], [60.0, 80.0, 90.0]]).view(1, 1, 3, 3)
    torch.testing.assert_close(resize_tf1_bilinear(x, 3), expected)


def test_tf1_resize_downsamples_by_sampling_at_i_times_in_over_out():
    a, b = torch.tensor([0.0, 40.0, 80.0, 200.0]), torch.tensor([0.0, 3.0, 6.0, 15.0])
    x = (a.view(4, 1) + b.view(1, 4)).view(1, 1, 4, 4)
    # sources 0, 4/3, 8/3: a -> 0, 40 + 40/3, 80 + 120*2/3; b -> 0, 3 + 3/3, 6 + 9*2/3
    expected = torch.tensor([0.0, 160 / 3, 160.0]).view(3, 1) + torch.tensor([0.0, 4.0, 12.0]).view(1, 3)
    out = resize_tf1_bilinear(x, 3)
    torch.testing.assert_close(out, expected.view(1, 1, 3, 3))
    assert not torch.allclose(out, F.interpolate(x, size=3, mode="bilinear", align_corners=False), atol=1)


def test_preprocess_is_exact_scaling_at_299():
    images = torch.randint(0, 256, (2, 3, 299, 299), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    for mode in ("tf1", "clean"):
        out = preprocess(images, mode, 299)
        assert torch.equal(out, (images.float() - 128) / 128)
    assert out.min() >= -1 and out.max() < 1


def test_clean_resize_is_pil_bicubic_on_float_channels():
    ramp = (10 * torch.arange(8.0)).expand(1, 3, 8, 8)
    out = resize_clean_bicubic(ramp, 16)
    # bicubic reproduces a linear ramp away from the borders, sampling at half-pixel centres
    expected = 10 * ((torch.arange(16.0) + 0.5) / 2 - 0.5)
    torch.testing.assert_close(out[0, :, :, 3:11], expected[3:11].expand(3, 16, 8), atol=1e-3, rtol=0)
    spike = torch.zeros(1, 1, 4, 4)
    spike[..., 1, 1] = 255
    assert resize_clean_bicubic(spike, 9).min() == 0  # bicubic undershoots below 0; clean-fid clips it


def test_published_weights_offline_error(tmp_path, monkeypatch):
    from sagan.metrics import inception

    monkeypatch.delenv("SAGAN_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    with socket.socket() as s:  # a port nobody listens on: the download fails at once, as offline
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/{inception.WEIGHTS_FILE}"
    monkeypatch.setattr(inception, "WEIGHTS_URL", url)
    monkeypatch.setattr(inception, "WEIGHTS_MIRROR", url)
    with pytest.raises(MissingPathError) as error:
        InceptionFeatures()
    message = str(error.value)
    assert "\n" not in message and message.startswith("FID Inception weights not found")
    for part in (f"get {url}", "--inception-weights PATH", "SAGAN_INCEPTION_WEIGHTS=PATH",
                 str(tmp_path / "hub" / "checkpoints" / "pt_inception-2015-12-05-6726825d.pth")):
        assert part in message


@needs_fixtures
def test_weights_from_the_environment_variable(monkeypatch):
    monkeypatch.setenv("SAGAN_INCEPTION_WEIGHTS", str(FIXTURES / "fid_inception_random_seed0.pth"))
    digest = hashlib.sha256((FIXTURES / "fid_inception_random_seed0.pth").read_bytes()).hexdigest()
    assert InceptionFeatures(fast=False).weights_sha256 == digest
