"""requirements.lock is what scripts/bootstrap.sh installs (with --require-hashes): every
dependency pyproject.toml declares, its test extra and its build backend must be pinned
there with hashes, at a version pyproject.toml allows. A dependency added or tightened in
pyproject.toml without `./scripts/lock` fails here instead of on a fresh machine."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from client.settings import PROJECT_ROOT

# `name==version \` (an optional `; marker` before the backslash), then its `--hash=` lines.
PIN = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>\S+)(?: ;[^\\]*)? \\$")


@dataclass(frozen=True)
class LockedPackage:
    version: Version
    hashes: tuple[str, ...]


def locked_packages() -> dict[str, LockedPackage]:
    lines = (PROJECT_ROOT / "requirements.lock").read_text().splitlines()
    locked: dict[str, LockedPackage] = {}
    for index, line in enumerate(lines):
        pin = PIN.match(line)
        if pin is None:
            continue
        hashes: list[str] = []
        for following in lines[index + 1 :]:
            hash_line = following.strip().removesuffix("\\").strip()
            if not hash_line.startswith("--hash=sha256:"):
                break
            hashes.append(hash_line.removeprefix("--hash=sha256:"))
        locked[canonicalize_name(pin["name"])] = LockedPackage(
            Version(pin["version"]), tuple(hashes)
        )
    return locked


def declared_requirements() -> list[Requirement]:
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    declared = [
        *pyproject["build-system"]["requires"],
        *pyproject["project"]["dependencies"],
        *pyproject["project"]["optional-dependencies"]["test"],
    ]
    return [Requirement(line) for line in declared]


def test_every_declared_dependency_is_locked_with_hashes_at_an_allowed_version() -> None:
    locked = locked_packages()
    problems: list[str] = []
    for requirement in declared_requirements():
        package = locked.get(canonicalize_name(requirement.name))
        if package is None:
            problems.append(f"{requirement} is not in requirements.lock")
        elif not requirement.specifier.contains(package.version, prereleases=True):
            problems.append(f"{requirement} but requirements.lock pins {package.version}")
    assert problems == [], "run ./scripts/lock: " + "; ".join(problems)


def test_every_locked_package_carries_sha256_hashes() -> None:
    locked = locked_packages()
    # The lock holds the transitive closure too (pip refuses a hashed install otherwise).
    assert len(locked) > len(declared_requirements())
    unhashed = [name for name, package in locked.items() if not package.hashes]
    malformed = [
        name
        for name, package in locked.items()
        if any(re.fullmatch(r"[0-9a-f]{64}", digest) is None for digest in package.hashes)
    ]
    assert unhashed == [] and malformed == []


def test_every_pin_line_of_the_lock_is_understood() -> None:
    # A line the parser above skips would be a package this test never checks.
    text = (PROJECT_ROOT / "requirements.lock").read_text()
    pin_lines = [line for line in text.splitlines() if "==" in line and not line.startswith("#")]
    assert len(pin_lines) == len(locked_packages())
