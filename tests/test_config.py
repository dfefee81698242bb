import pytest

from sagan import config
from sagan.errors import ConfigError, MissingPathError


def test_defaults_are_the_paper_recipe():
    t = config.Config().train
    assert (t.loss, t.lr_g, t.lr_d, t.beta1, t.beta2, t.n_dis) == ("hinge", 1e-4, 4e-4, 0.0, 0.9, 1)
    m = config.Config().model
    assert m.g_spectral_norm and m.d_spectral_norm and m.attention == "paper"


@pytest.mark.parametrize("name", list(config.PRESETS))
def test_every_preset_is_valid_and_round_trips_through_yaml(name, tmp_path):
    cfg = config.preset(name)
    config.validate(cfg, scope="synthetic")  # the presets of datasets read from files name no data.root
    path = tmp_path / "config.yaml"
    path.write_text(config.to_yaml(cfg))
    assert config.from_dict(config.load_yaml(path)) == cfg


def test_set_values_are_typed():
    cfg = config.preset("demo")
    config.set_value(cfg, "train.lr_g", "2e-4")
    config.set_value(cfg, "model.g_attention", "[8, 16]")
    config.set_value(cfg, "model.d_attention", "")
    config.set_value(cfg, "train.channels_last", "yes")
    config.set_value(cfg, "data.root", "none")
    config.set_value(cfg, "train.steps", "10_000")
    assert cfg.train.lr_g == 2e-4 and cfg.model.g_attention == [8, 16] and cfg.model.d_attention == []
    assert cfg.train.channels_last is True and cfg.data.root is None and cfg.train.steps == 10000
    config.set_value(cfg, "train.channels_last", "auto")
    assert cfg.train.channels_last is None


@pytest.mark.parametrize("assignment,message", [
    ("train.lrg=1", r"unknown config key 'train.lrg' \(did you mean train.lr_g\?\)"),
    ("optim.lr=1", "unknown config key 'optim.lr'"),
    ("train=1", "'train' is a section"),
    ("train.steps=many", "train.steps expects an integer, got 'many'"),
    ("train.reuse_fakes=maybe", "expects true or false"),
    ("train.channels_last=maybe", "expects true, false or auto"),
    ("model.g_attention=[a]", "expects a list of integers"),
    ("noequals", "--set expects key=value"),
])
def test_bad_overrides_name_the_problem(assignment, message):
    with pytest.raises(ConfigError, match=message):
        config.set_value(config.Config(), *config.parse_assignment(assignment))


@pytest.mark.parametrize("key,value,message", [
    ("data.resolution", 48, "data.resolution: 48 is not a power of two from 32 to 256"),
    ("data.resolution", 512, "not a power of two from 32 to 256"),
    ("train.loss", "lsgan", "train.loss: 'lsgan' is not one of hinge, bce, wgan-gp"),
    ("train.batch_size", 0, "train.batch_size: must be positive"),
    ("train.ema_decay", 1.0, r"train.ema_decay: must be in \[0, 1\)"),
    ("train.device", "tpu", "train.device: 'tpu'"),
    ("data.channels", 2, "data.channels"),
    ("train.compile_mode", "reduce-overhead", "train.compile_mode: 'reduce-overhead' applies only with train.compile"),
    ("train.compile_mode", "fast", "train.compile_mode: 'fast' is not one of default, reduce-overhead"),
])
def test_validate_names_the_option(key, value, message):
    cfg = config.preset("demo")
    config.set_value(cfg, key, value)
    with pytest.raises(ConfigError, match=message):
        config.validate(cfg)


@pytest.mark.parametrize("overrides,message", [
    ({"train.n_dis": 2}, "train.reuse_fakes: needs train.n_dis=1 .*, got 2"),
    ({"train.compile": True, "train.compile_mode": "reduce-overhead"},
     "train.reuse_fakes: does not combine with train.compile_mode=reduce-overhead"),
])
def test_reused_fakes_need_one_d_step_and_no_cuda_graphs(overrides, message):
    cfg = config.preset("demo")
    for key, value in (overrides | {"train.reuse_fakes": True}).items():
        config.set_value(cfg, key, value)
    with pytest.raises(ConfigError, match=message):
        config.validate(cfg)


def test_unknown_preset_lists_the_presets():
    with pytest.raises(ConfigError, match="unknown preset 'celeb'; choose from demo, paper, seed, dcgan64"):
        config.preset("celeb")


def test_yaml_file_errors(tmp_path):
    with pytest.raises(MissingPathError, match="does not exist"):
        config.load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        config.load_yaml(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("train:\n  stpes: 3\n")
    with pytest.raises(ConfigError, match=f"{typo}: unknown config key 'train.stpes'"):
        config.update(config.Config(), config.load_yaml(typo), source=str(typo))
