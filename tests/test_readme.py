"""The README's first two commands are the set-up-and-demo and set-up-and-test commands, and CI runs the second;
lists in the README that the code defines match it."""

import re
from pathlib import Path

from sagan.config import resumable_keys

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("```sh") + 1
    return lines[start : start + 2]


def test_readme_starts_with_the_demo_and_test_commands():
    demo, tests = readme_commands()
    assert demo.endswith("sagan train") and "pip install torch==2.13.0" in demo
    assert tests.endswith("pytest -q") and "'.[test]'" in tests


def test_ci_runs_the_readme_test_command():
    assert readme_commands()[1] in (ROOT / ".ci" / "run").read_text().splitlines()


def test_the_readme_lists_the_fields_a_resume_may_change():
    text = " ".join((ROOT / "README.md").read_text().split())
    listed = text.split("Only the fields that say how the run continues, not what it trains, may change: ")[1]
    listed = listed.split(", through their flags")[0]
    assert re.findall(r"`([a-z_.]+)`", listed) == resumable_keys()


def test_the_readme_dataset_table_gives_each_datasets_splits():
    from sagan import data

    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("| `--data` | what `--data-root DIR` holds | `data.split` | labels |") + 2
    table = lines[start : lines.index("", start)]
    splits = {name: row.split(" | ")[2] for row in table for name in re.findall(r"`([a-z0-9-]+)`", row.split(" | ")[0])}
    assert set(splits) == set(data.DATASETS)
    for name, dataset in data.DATASETS.items():  # "train, all (the same images)": the names before any remark
        assert re.findall(r"[a-z]+", splits[name].split("(")[0]) == list(dataset.splits), name
