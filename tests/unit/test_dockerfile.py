"""The Dockerfile cannot be built here (no Docker engine), so read it: it copies every
package pyproject.toml lists before installing, and installs every dependency from
requirements.lock with --require-hashes, refundflow itself without resolving or fetching
anything more (a package left out, or a `pip install .` that resolves, failed before)."""

from __future__ import annotations

import shlex
import tomllib

from client.settings import PROJECT_ROOT

PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())


def instructions() -> list[tuple[str, list[str]]]:
    """(instruction, its words) per Dockerfile line, continuation lines joined."""
    text = (PROJECT_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            found.append((words[0].upper(), words[1:]))
    return found


def pip_installs() -> list[tuple[int, list[str]]]:
    """(index among the instructions, the pip command's words) for every `pip install`."""
    found = []
    for index, (instruction, words) in enumerate(instructions()):
        if instruction != "RUN":
            continue
        command = " ".join(words)
        for part in command.split("&&"):
            part_words = part.split()
            if part_words[:2] == ["pip", "install"]:
                found.append((index, part_words[2:]))
    return found


def copied_before(index: int) -> set[str]:
    """What the COPY instructions before `index` put in the image (their sources)."""
    sources: set[str] = set()
    for instruction, words in instructions()[:index]:
        if instruction == "COPY":
            sources.update(word.rstrip("/") for word in words[:-1])
    return sources


def test_every_package_pyproject_lists_is_copied_before_refundflow_is_installed() -> None:
    (project_install,) = [(i, w) for i, w in pip_installs() if w[-1] == "."]
    copied = copied_before(project_install[0])
    packages = PYPROJECT["tool"]["setuptools"]["packages"]
    top_level = {package.split(".")[0] for package in packages}
    assert top_level <= copied, f"not copied: {sorted(top_level - copied)}"
    assert {"pyproject.toml", PYPROJECT["project"]["readme"], "policies"} <= copied
    for source in copied:
        assert (PROJECT_ROOT / source).exists(), source


def test_dependencies_come_from_the_lock_with_hashes_and_nothing_else_is_fetched() -> None:
    installs = pip_installs()
    lock_installs = [(i, w) for i, w in installs if "requirements.lock" in w]
    assert len(lock_installs) == 1, "the dependencies are installed from requirements.lock"
    index, words = lock_installs[0]
    assert "--require-hashes" in words and words[words.index("-r") + 1] == "requirements.lock"
    assert "requirements.lock" in copied_before(index)
    (project_install,) = [(i, w) for i, w in installs if w[-1] == "."]
    assert project_install[0] > index
    # Resolving would fetch unhashed packages; build isolation an unhashed setuptools.
    assert {"--no-deps", "--no-build-isolation"} <= set(project_install[1])
    assert len(installs) == 2, "every pip install is one of the two above"
