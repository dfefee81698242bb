"""The README's first two commands are the set-up-and-demo and set-up-and-test commands, and CI runs the second."""

from pathlib import Path

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
