"""`train.loggers`: each experiment tracker receives the scalars of metrics.jsonl and the sample grids, and a
resumed run continues the same tracker run (W&B offline and an MLflow file store, read back)."""

import json
from pathlib import Path

import pytest
from conftest import error_line, tiny_config

from sagan.cli import main
from sagan.training.trainer import train


def trained(run_dir: Path, loggers: list[str]) -> list[dict]:
    """4 steps, then a resume to 6; the metrics.jsonl records with a d_loss."""
    train(tiny_config(**{"train.loggers": loggers, "train.report": False}), run_dir, progress=False)
    train(tiny_config(**{"train.loggers": loggers, "train.report": False, "train.steps": 6}), run_dir, resume=True,
          progress=False)
    return [r for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if "d_loss" in r]


def test_tensorboard_receives_the_scalars_and_grids(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is an optional extra")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    records = trained(tmp_path, ["tensorboard"])
    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"scalars": 0, "images": 0}).Reload()
    assert [(e.step, e.value) for e in events.Scalars("d_loss")] == [
        (r["step"], pytest.approx(r["d_loss"])) for r in records]
    assert [e.step for e in events.Images("samples")] == [2, 4, 6]


def test_mlflow_receives_the_scalars_and_grids_in_one_run(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="mlflow is an optional extra")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    records = trained(tmp_path, ["mlflow"])
    client = MlflowClient((tmp_path / "mlruns").as_uri())
    run_id = (tmp_path / "mlflow-run-id").read_text()
    history = client.get_metric_history(run_id, "d_loss")
    assert [(m.step, m.value) for m in history] == [(r["step"], pytest.approx(r["d_loss"])) for r in records]
    assert client.get_run(run_id).data.params["train.loggers"] == "['mlflow']"
    assert [a.path for a in client.list_artifacts(run_id)] == ["images"]


def wandb_history(path: Path) -> list[dict]:
    """The history rows of a W&B offline run file: a LevelDB-style log of protobuf Records after a 7-byte header."""
    from wandb.proto import wandb_internal_pb2 as pb

    raw, pos, block, part, rows = path.read_bytes(), 7, 32768, b"", []
    while pos + 7 <= len(raw):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(raw[pos + 4:pos + 6], "little"), raw[pos + 6]
        part += raw[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a whole record, or its last piece
            record = pb.Record()
            record.ParseFromString(part)
            if record.WhichOneof("record_type") == "history":
                rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                             for item in record.history.item})
            part = b""
    return rows


def test_wandb_offline_receives_the_scalars_and_grids_in_one_run(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="wandb is an optional extra")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    records = trained(tmp_path, ["wandb"])
    run_id = (tmp_path / "wandb-run-id").read_text()
    files = sorted((tmp_path / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))
    assert len(files) == 2  # the first start and the resume, one W&B run id
    rows = [row for f in files for row in wandb_history(f)]
    assert [(row["_step"], row["d_loss"]) for row in rows] == [(r["step"], pytest.approx(r["d_loss"]))
                                                               for r in records]
    assert all(row["samples/_type"] == "image-file" for row in rows)


def test_an_unknown_or_missing_tracker_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    assert main(["train", "--out", str(tmp_path / "a"), "--set", "train.loggers=[neptune]", "--dry-run"]) == 2
    assert error_line(capsys) == "sagan: error: train.loggers: neptune not among tensorboard, wandb, mlflow"
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    assert main(["train", "--out", str(tmp_path / "b"), "--set", "train.loggers=[mlflow]", "--steps", "1"]) == 2
    assert "train.loggers: mlflow needs the mlflow package: pip install 'sagan[mlflow]'" in error_line(capsys)
    assert not (tmp_path / "b").exists()
