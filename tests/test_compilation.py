"""train.compile: auto compiles on CUDA only, picks CUDA graphs where the run allows, and falls back to eager."""

import pytest
import torch
from conftest import tiny_config

from sagan.errors import RunError
from sagan.runtime import seed_everything
from sagan.training import compilation
from sagan.training.gan import GANTraining


def test_auto_is_eager_on_the_cpu():
    gan = GANTraining(tiny_config(), torch.device("cpu"), batches_per_epoch=1)
    assert gan.compiling == compilation.Plan(None, "")
    assert gan.G._compiled_call_impl is None and gan.D._compiled_call_impl is None


@pytest.mark.parametrize("options, processes, mode, said", [
    ({}, 1, "reduce-overhead", "with CUDA graphs"),
    ({"train.reuse_fakes": True}, 1, "default", "without CUDA graphs (train.reuse_fakes)"),
    ({"train.accumulate": 2}, 1, "default", "without CUDA graphs (train.accumulate)"),
    ({}, 2, "default", "without CUDA graphs (torchrun)"),
    ({"train.loss": "wgan-gp"}, 1, None, "off, G and D run eagerly (train.gp_weight"),
    ({"train.r1_weight": 1.0}, 1, None, "off, G and D run eagerly (train.r1_weight"),
    ({"train.compile": False}, 1, None, ""),
    ({"train.compile": True}, 1, "default", "mode default"),
])
def test_auto_on_cuda_uses_cuda_graphs_where_the_run_allows(options, processes, mode, said):
    plan = compilation.plan(tiny_config(**options), torch.device("cuda"), processes)
    assert plan.mode == mode and said in plan.note


def test_compiled_networks_keep_the_plain_parameter_names():
    compiled = GANTraining(tiny_config(**{"train.compile": True}), torch.device("cpu"), 1)
    plain = GANTraining(tiny_config(**{"train.compile": False}), torch.device("cpu"), 1)
    assert compiled.G._compiled_call_impl is not None
    assert compiled.state_dict()["generator"].keys() == plain.state_dict()["generator"].keys()


def failing_compiler(monkeypatch) -> None:
    """Every network compiles with a backend that fails, as a missing compiler or an unsupported op would."""
    def backend(graph, example_inputs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(compilation, "compile_networks", lambda nets, mode: [net.compile(backend=backend)
                                                                             for net in nets])


def one_step(gan: GANTraining, log=print) -> dict[str, float]:
    images = torch.randint(0, 256, (4, 3, 32, 32), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    stats = gan.train_step([(images, torch.zeros(4, dtype=torch.long))], 4, 1, log)
    return {key: value.item() for key, value in stats.items()}


def test_a_failed_compilation_redoes_the_step_eagerly(monkeypatch):
    seed_everything(0)
    eager = GANTraining(tiny_config(), torch.device("cpu"), 1)
    want = one_step(eager)
    failing_compiler(monkeypatch)
    monkeypatch.setattr(compilation, "plan", lambda cfg, device, processes: compilation.Plan("default", "compiled"))
    seed_everything(0)
    gan = GANTraining(tiny_config(), torch.device("cpu"), 1)
    lines = []
    try:
        got = one_step(gan, lines.append)
    finally:
        torch._dynamo.reset()
    # The failed attempt left nothing behind: the step is the eager one's, bit for bit.
    assert got == want and lines == ["torch.compile failed (RuntimeError: no compiler here); G and D run eagerly"]
    assert gan.compiling.mode is None and gan.G._compiled_call_impl is None
    for net in ("generator", "discriminator", "generator_ema"):
        for key, value in eager.state_dict()[net].items():
            assert torch.equal(gan.state_dict()[net][key], value), key


def test_asked_for_compilation_that_fails_stops_with_one_line(monkeypatch):
    failing_compiler(monkeypatch)
    gan = GANTraining(tiny_config(**{"train.compile": True}), torch.device("cpu"), 1)
    try:
        with pytest.raises(RunError, match=r"^train.compile=true: torch.compile failed \(.*\); set train.compile=auto"):
            one_step(gan)
    finally:
        torch._dynamo.reset()


def test_the_run_log_says_what_was_compiled_and_why_it_fell_back(tmp_path, monkeypatch):
    from sagan.training.trainer import train

    failing_compiler(monkeypatch)
    monkeypatch.setattr(compilation, "plan", lambda cfg, device, processes: compilation.Plan(
        "default", "torch.compile: G and D, mode default"))
    try:
        train(tiny_config(**{"train.steps": 2, "train.report": False}), tmp_path, progress=False)
    finally:
        torch._dynamo.reset()
    log = (tmp_path / "train.log").read_text()
    assert "torch.compile: G and D, mode default" in log
    assert "torch.compile failed (RuntimeError: no compiler here); G and D run eagerly" in log
    assert "first step, compiling" not in log


def test_a_compiled_run_logs_its_first_step_and_checkpoints_plain_names(tmp_path, monkeypatch):
    from sagan.training.trainer import train

    # dynamo's "eager" backend: the graphs are captured as torch.compile captures them, then run uncompiled.
    monkeypatch.setattr(compilation, "compile_networks", lambda nets, mode: [net.compile(backend="eager")
                                                                             for net in nets])
    monkeypatch.setattr(compilation, "plan", lambda cfg, device, processes: compilation.Plan("default", "compiled"))
    try:
        train(tiny_config(**{"train.steps": 2, "train.report": False}), tmp_path, progress=False)
    finally:
        torch._dynamo.reset()
    assert "first step, compiling G and D: " in (tmp_path / "train.log").read_text()
    state = torch.load(tmp_path / "checkpoints" / "latest.pt", weights_only=True)
    plain = GANTraining(tiny_config(), torch.device("cpu"), 1).state_dict()
    assert state["generator"].keys() == plain["generator"].keys()
    assert state["discriminator"].keys() == plain["discriminator"].keys()
