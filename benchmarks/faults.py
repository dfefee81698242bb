"""Fault benchmark: kill -9 a demo run at random moments (some of them while a checkpoint is being written), resume
it each time, and check what survives. Each run is a fresh `sagan train` process, as a user runs them.

    .venv/bin/python benchmarks/faults.py [--kills 20] [--steps 300] [--checkpoint-every 4]
        [--max-wait 12] [--threads 2] [--seed 1]

Every other kill waits for a checkpoint's temporary file to appear and kills then; the others kill after a random
time, up to --max-wait seconds after the start (startup included). After each kill it counts the checkpoint files
that do not load (must be 0) and the lines of metrics.jsonl that do not parse, other than a last line cut short
(must be 0), and the steps lost (logged but not checkpointed). Then it resumes (or starts afresh where no
checkpoint was written yet); a resume that fails on its own ends the benchmark with an error, one killed before it
read its checkpoint is counted as not started. At the end the run is
finished and its weights, optimiser states and EMA are compared with an uninterrupted run's, tensor by tensor
(CPU: bit-exact). One JSON line per kill, then a summary line.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from resume_stress import compare

from sagan import checkpoints
from sagan.errors import UserError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--max-wait", type=float, default=12.0, help="seconds, the longest random kill time")
    parser.add_argument("--checkpoint-every", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    options = ["--steps", str(args.steps), "--seed", str(args.seed), "--no-progress", "--set", "train.log_every=1",
               "--set", f"train.checkpoint_every={args.checkpoint_every}", "--set", "train.report=false"]
    env = os.environ | {"OMP_NUM_THREADS": str(args.threads)}
    with tempfile.TemporaryDirectory() as tmp:
        straight, run = Path(tmp) / "straight", Path(tmp) / "run"
        subprocess.run(sagan("--out", straight, *options), env=env, check=True, stdout=subprocess.DEVNULL)

        totals = {"kills": 0, "resumes": 0, "resumes_worked": 0, "killed_in_checkpoint_write": 0,
                  "checkpoints_unreadable": 0, "log_lines_corrupt": 0, "steps_lost_max": 0}
        for i in range(args.kills):
            resume, resumes_before = has_checkpoint(run), logged_steps(run)["resumes"]
            process = subprocess.Popen(sagan(*(["--resume", run] if resume else ["--out", run]), *options), env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            in_write = i % 2 == 1
            if in_write:
                killed = kill_in_checkpoint_write(process, run)
            else:
                killed = kill_after(process, rng.uniform(0, args.max_wait))
            err = process.communicate()[1]
            if not killed:  # it ended first: at its last step, or it failed
                if process.returncode != 0:
                    print(err, file=sys.stderr)
                    return 1
                break
            logged = logged_steps(run)
            started = logged["resumes"] > resumes_before
            unreadable, newest = check_checkpoints(run)
            lost = max(logged["steps"], default=0) - newest
            totals["kills"] += 1
            totals["killed_in_checkpoint_write"] += in_write
            totals["resumes"] += resume
            totals["resumes_worked"] += started  # it read its checkpoint and trained on (else: killed before that)
            totals["checkpoints_unreadable"] += unreadable
            totals["log_lines_corrupt"] += logged["corrupt"]
            totals["steps_lost_max"] = max(totals["steps_lost_max"], lost)
            print(json.dumps({"kill": i, "resumed": resume, "resume_started": started,
                              "during_checkpoint_write": in_write,
                              "newest_checkpoint_step": newest, "last_logged_step": max(logged["steps"], default=0),
                              "steps_lost": lost, "checkpoints_unreadable": unreadable,
                              "log_lines_corrupt": logged["corrupt"]}), flush=True)

        finish = subprocess.run(sagan("--resume", run, *options), check=False, env=env, stdout=subprocess.DEVNULL)
        differing = compare(straight / "checkpoints" / checkpoints.LATEST, run / "checkpoints" / checkpoints.LATEST)
        steps = logged_steps(run)["steps"]
        totals |= {"final_run_finished": finish.returncode == 0, "final_weights_bit_exact": not differing,
                   "differing_tensors": differing[:5], "step_records_duplicated": len(steps) - len(set(steps)),
                   "steps": args.steps, "checkpoint_every": args.checkpoint_every, "threads": args.threads}
    print(json.dumps(totals))
    good = (totals["checkpoints_unreadable"] == totals["log_lines_corrupt"] == totals["step_records_duplicated"] == 0
            and not differing and finish.returncode == 0)
    return 0 if good else 1


def sagan(*args) -> list[str]:
    return [sys.executable, "-m", "sagan", "train", *map(str, args)]


def has_checkpoint(run: Path) -> bool:
    try:
        checkpoints.load(run)
        return True
    except UserError:
        return False


def kill_after(process: subprocess.Popen, seconds: float) -> bool:
    """SIGKILL `process` after `seconds` unless it ends first; whether it was killed."""
    try:
        process.wait(seconds)
        return False
    except subprocess.TimeoutExpired:
        process.kill()
        return True


def kill_in_checkpoint_write(process: subprocess.Popen, run: Path) -> bool:
    """SIGKILL `process` as soon as a checkpoint's temporary file appears (polling every millisecond)."""
    folder = checkpoints.checkpoint_dir(run)
    stale = set(folder.glob(".*.tmp"))  # left by the last kill, until this process removes them
    while process.poll() is None:
        if folder.is_dir() and set(folder.glob(".*.tmp")) - stale:
            process.kill()
            return True
        time.sleep(0.001)
    return False


def check_checkpoints(run: Path) -> tuple[int, int]:
    """How many checkpoint files (latest.pt and step-*.pt) do not load, and the newest step that does (0: none)."""
    unreadable, newest = 0, 0
    folder = checkpoints.checkpoint_dir(run)
    for path in sorted(folder.glob("*.pt")) if folder.is_dir() else []:
        try:
            newest = max(newest, checkpoints.load(path)["step"])
        except UserError:
            unreadable += 1
    return unreadable, newest


def logged_steps(run: Path) -> dict:
    """The steps of metrics.jsonl's records, the lines that do not parse (a last line cut short by the kill is
    allowed), and how many resumes train.log records."""
    path = run / "metrics.jsonl"
    lines = path.read_text().split("\n") if path.is_file() else []
    steps, corrupt = [], 0
    for i, line in enumerate(lines):
        try:
            steps.append(json.loads(line)["step"])
        except (ValueError, KeyError):
            corrupt += bool(line) and i != len(lines) - 1
    log = (run / "train.log").read_text() if (run / "train.log").is_file() else ""
    return {"steps": steps, "corrupt": corrupt, "resumes": log.count("resumed at step ")}


if __name__ == "__main__":
    sys.exit(main())
