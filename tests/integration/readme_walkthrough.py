"""The README's CLI walkthrough, run as written (test_dev_command runs it from a copy of the
clone with `refundflow dev` running there, as a newcomer does): every `refundflow` command of
its block, in order (ord_… and rf_… filled in from what the commands printed), and every
sample line printed under a command found in what that command printed, so the samples a
newcomer compares with cannot drift from the product (issue 17: they showed ISO moments
while the CLI prints `2026-11-26 06:24:39 UTC`). In a sample, `…` stands for anything, and
a date or time stands for any date or time written the same way."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# Moments as the samples write them, each replaced by a pattern of the same shape.
_MOMENT_SHAPES = [
    (r"\d{4}-\d\d-\d\d", r"\d{4}-\d\d-\d\d"),
    (r"\d{1,2} [A-Z][a-z]{2} \d{4}", r"\d{1,2} [A-Z][a-z]{2} \d{4}"),
    (r"\d\d:\d\d:\d\d", r"\d\d:\d\d:\d\d"),
    (r"\d\d:\d\d", r"\d\d:\d\d"),
]


@dataclass
class Step:
    command: str
    samples: list[str] = field(default_factory=list)


def walkthrough(readme_path: Path) -> list[Step]:
    """The walkthrough block's refundflow commands, each with the sample lines under it."""
    readme = readme_path.read_text()
    section = readme.split("## Walkthrough", 1)[1]
    found = re.search(r"```bash\n(.*?)```", section, re.S)
    assert found, "the README lost its walkthrough"
    steps: list[Step] = []
    lines = iter(found.group(1).replace("\\\n", " ").splitlines())
    under_a_command = False  # samples follow a command; other comments go on a heading
    for line in lines:
        if line.startswith("refundflow "):
            steps.append(Step(line.split("  #", 1)[0].strip()))
            under_a_command = True
        elif re.match(r"#\s{2,}\S", line) and under_a_command:
            steps[-1].samples.append(line[1:].strip())
        else:
            under_a_command = False
    assert len(steps) >= 10 and sum(len(s.samples) for s in steps) >= 15, steps
    return steps


def sample_pattern(sample: str) -> re.Pattern[str]:
    """A sample line as a pattern for one printed line (stripped)."""
    parts = re.split(r"(…|" + "|".join(shape for shape, _ in _MOMENT_SHAPES) + ")", sample)
    pattern = ""
    for part in parts:
        if part == "…":
            pattern += ".*"
        elif any(re.fullmatch(shape, part) for shape, _ in _MOMENT_SHAPES):
            pattern += next(p for shape, p in _MOMENT_SHAPES if re.fullmatch(shape, part))
        else:
            pattern += re.escape(part)
    return re.compile(pattern)


def missing_samples(samples: list[str], printed: str) -> list[str]:
    """The samples not found, in order, among the printed lines."""
    lines = [line.strip() for line in printed.splitlines()]
    at, missing = 0, []
    for sample in samples:
        if sample == "…":
            continue
        pattern = sample_pattern(sample)
        hit = next((i for i in range(at, len(lines)) if pattern.fullmatch(lines[i])), None)
        if hit is None:
            missing.append(sample)
        else:
            at = hit + 1
    return missing


def run(command: str, env: dict[str, str], cwd: Path) -> tuple[str, int]:
    """What the command printed, and its exit status."""
    words = shlex.split(command)[1:]
    done = subprocess.run(
        [sys.executable, "-m", "worker.cli", *words],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, (command, done.stderr)
    try:  # --json prints an indented document; the README samples it on one line
        printed = json.dumps(json.loads(done.stdout), ensure_ascii=False) + done.stderr
    except ValueError:
        printed = done.stdout + done.stderr
    return printed, done.returncode


def walk_the_readme(folder: Path, env: dict[str, str]) -> None:
    """The walkthrough of folder/README.md, each command run in `folder` with `env`."""
    ids: dict[str, str] = {}
    for step in walkthrough(folder / "README.md"):
        command = step.command.replace("ord_…", ids.get("ord", "ord_…"))
        command = command.replace("rf_…", ids.get("rf", "rf_…"))
        deadline = time.monotonic() + 30  # a refund moves on by itself: wait for the sample
        while True:
            printed, status = run(command, env, folder)
            missing = missing_samples(step.samples, printed)
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert not missing, f"$ {command}\n{printed}\nnot printed: {missing}"
        # A step the README shows refused ("error: …") exits non-zero; every other succeeds,
        # also the steps whose output the README does not sample.
        refused = any(sample.startswith("error:") for sample in step.samples)
        assert (status != 0) == refused, f"$ {command}\nexit {status}\n{printed}"
        for prefix, pattern in (("ord", r"ord_\w+"), ("rf", r"rf_[0-9a-f]{24}")):
            if prefix not in ids and (seen := re.search(pattern, printed)):
                ids[prefix] = seen.group(0)
    assert (folder / "refundflow-report.html").exists()  # the walkthrough's last command
