"""`refundflow dev` as a user runs it: foreground, discoverable, and leaves nothing behind."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from subprocess import CompletedProcess
from typing import IO, Any

import pytest

from client.settings import DEFAULT_POLICY, PROJECT_ROOT, pid_alive
from tests.integration.readme_walkthrough import walk_the_readme
from worker.processes import free_port, port_in_use

pytestmark = pytest.mark.stack


def start_dev(folder: Path, *extra: str) -> tuple[subprocess.Popen[str], dict[str, int]]:
    # Every port its own (the metrics' too): a developer's `refundflow dev` may run beside.
    names = ("temporal", "ui", "pg", "sandbox", "webhook", "api", "codec", "metrics", "api-metrics")
    ports = {name: free_port() for name in names}
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REFUNDFLOW_HOME")}
    command = [sys.executable, "-m", "worker.cli", "dev", *extra]
    for name in names:
        command += [f"--{name}-port", str(ports[name])]
    proc = subprocess.Popen(
        command,
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        # --json keeps stdout for the one JSON object; progress goes to stderr
        stderr=subprocess.DEVNULL if "--json" in extra else subprocess.STDOUT,
        text=True,
    )
    return proc, ports


class Lines:
    """A process's output, line by line, read by a thread so that every read has a deadline:
    iterating the pipe directly blocks for as long as the process stays silent."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)  # end of output: the process closed it (exited)

    def next(self, deadline: float, seen: list[str]) -> str | None:
        """The next line, or None at the end of output; fails once `deadline` passes."""
        try:
            return self._lines.get(timeout=max(deadline - time.monotonic(), 0))
        except queue.Empty:
            raise AssertionError(f"no output line before the deadline; seen: {seen}") from None


def wait_for_banner(proc: subprocess.Popen[str], timeout: float = 120) -> list[str]:
    assert proc.stdout is not None
    lines, seen = Lines(proc.stdout), list[str]()
    deadline = time.monotonic() + timeout
    while (line := lines.next(deadline, seen)) is not None:
        seen.append(line.rstrip())
        if "Press Ctrl-C" in line:
            return seen
    raise AssertionError(f"dev exited early: {seen}")


@pytest.fixture
def folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("devfolder")


@pytest.fixture
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh clone's layout: the project's files (tracked, and new ones not ignored), no
    .venv, no .refundflow. `python -m worker.cli` run in it runs its code."""
    copy = tmp_path_factory.mktemp("clone")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_ROOT, capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    for name in filter(None, listed.split("\0")):
        source = PROJECT_ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    return copy


def children_of(folder: Path) -> dict[str, int]:
    stack = json.loads((folder / ".refundflow" / "stack.json").read_text())
    children: dict[str, int] = stack["children"]
    return children


def test_dev_runs_in_the_foreground_is_found_from_the_folder_and_stops_cleanly(
    clone: Path,
) -> None:
    """The newcomer's first hour (issue 17, item 3): `dev` in a fresh clone, the README's
    walkthrough from a second shell in that folder with no variables, then off-script."""
    folder = clone
    proc, ports = start_dev(folder)
    try:
        banner = wait_for_banner(proc)
        assert any("demo orders" in line for line in banner), banner
        assert "captured 42.00 USD  category" in "\n".join(banner), banner  # not 4200 USD
        children = children_of(folder)
        assert set(children) == {
            "PostgreSQL", "Temporal", "sandbox", "webhooks", "worker", "api", "codec"
        }  # fmt: skip
        stack = json.loads((folder / ".refundflow" / "stack.json").read_text())
        assert stack["policy"] == DEFAULT_POLICY  # new refunds get the policy in force

        # Another command from the same folder finds the stack with no flags or variables.
        env = {"PATH": os.environ["PATH"]}
        made = run_in(folder, env, "client", "sandbox", "order", "--amount", "700", "--json")
        assert made.returncode == 0, made.stderr
        assert json.loads(made.stdout)["captured_amount"] == 700

        with urllib.request.urlopen(f"http://127.0.0.1:{ports['ui']}/", timeout=10) as page:
            assert page.status == 200  # the Temporal Web UI
        check_the_ui_opens_payloads_through_the_codec_server(stack, ports)
        check_the_api_and_a_dev_token(folder, env, ports["api"])

        walk_the_readme(folder, env)
        check_off_script_mistakes(folder, env)

        # A second `dev` here says the first runs, and does not read as if it stopped it.
        again = run_in(folder, env, "worker.cli", "dev")
        assert again.returncode == 1, again
        assert "already running" in again.stderr and "stopped" not in again.stdout + again.stderr
        assert (folder / ".refundflow" / "stack.json").exists() and children_of(folder) == children

        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        for name, pid in children.items():
            assert not pid_alive(pid), f"{name} (pid {pid}) survived Ctrl-C"
        assert not (folder / ".refundflow" / "stack.json").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def check_off_script_mistakes(folder: Path, env: dict[str, str]) -> None:
    """What a newcomer types wrong: one line on stderr, exit 2 (1 for what is not there),
    and with --json that line is JSON."""
    for args, status, says in [
        (["staus", "rf_x"], 2, "did you mean 'status'?"),
        (["--as", "alcie", "list"], 2, "did you mean alice?"),
        (["reconcile", "--grace", "-5"], 2, "0 or more"),
        (["approve", "rf_" + "0" * 24, "--amount", "1_000"], 2, "the currency's minor units"),
        (["sandbox", "inbox", "--refund", "rf_" + "0" * 24], 0, "no notification for rf_"),
    ]:
        done = run_in(folder, env, "worker.cli", *args)
        said = done.stderr if status else done.stdout
        assert done.returncode == status and says in said and said.count("\n") == 1, done
    as_json = run_in(folder, env, "worker.cli", "--json", "status", "rf_" + "0" * 24)
    assert as_json.returncode == 1 and json.loads(as_json.stderr)["exit_status"] == 1, as_json


def check_the_ui_opens_payloads_through_the_codec_server(
    stack: dict[str, object], ports: dict[str, int]
) -> None:
    """The Web UI is pointed at the stack's codec server, which lets the UI's own origin
    through without a token (the dev UI has no login), and nobody else."""
    ui = f"http://127.0.0.1:{ports['ui']}"
    with urllib.request.urlopen(f"{ui}/api/v1/settings", timeout=10) as page:
        codec = json.loads(page.read())["Codec"]
    assert codec["Endpoint"] == f"http://127.0.0.1:{ports['codec']}" == stack["codec_url"]
    for origin, status in [(f"http://localhost:{ports['ui']}", 200), (None, 401)]:
        request = urllib.request.Request(
            f"{codec['Endpoint']}/decode",
            data=b'{"payloads": []}',
            headers={"Content-Type": "application/json", **({"Origin": origin} if origin else {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                assert (answer.status, json.loads(answer.read())) == (status, {"payloads": []})
        except urllib.error.HTTPError as refused:
            assert refused.code == status, origin


@dataclass
class Ready:
    proc: subprocess.Popen[str]
    ports: dict[str, int]
    ready: dict[str, Any]
    """`dev --json`'s one object on stdout, once the stack is ready."""


def start_ready(folder: Path) -> Ready:
    proc, ports = start_dev(folder, "--json")
    assert proc.stdout is not None
    try:
        line = Lines(proc.stdout).next(time.monotonic() + 120, [])
    except AssertionError:
        proc.kill()
        proc.wait()
        raise
    if not line:
        proc.wait()
        raise AssertionError("dev exited before it was ready")
    return Ready(proc, ports, json.loads(line))


def test_children_die_with_dev_even_on_kill_9(folder: Path) -> None:
    started = start_ready(folder)
    proc, ports, ready = started.proc, started.ports, started.ready
    try:
        assert ready["temporal_address"] == f"127.0.0.1:{ports['temporal']}"
        assert ready["ui_url"] == f"http://127.0.0.1:{ports['ui']}"
        assert [o["captured_amount"] for o in ready["demo_orders"]] == [4200, 12000, 8900]
        children = ready["children"]
        assert children == children_of(folder)
        assert {"worker", "api", "Temporal"} <= set(children), children  # a tree to kill
    finally:
        proc.kill()  # SIGKILL: no handler runs, only the kernel's parent-death signal
        proc.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(pid_alive(p) for p in children.values()):
        time.sleep(0.2)
    survivors = {name: pid for name, pid in children.items() if pid_alive(pid)}
    for pid in survivors.values():  # clean up before failing: we started them
        os.kill(pid, signal.SIGKILL)
    assert not survivors, f"still running after dev was killed: {survivors}"

    # Started again after the kill, from its state: the same demo orders, not three more.
    again = start_ready(folder)
    try:
        assert again.ready["demo_orders"] == ready["demo_orders"]
    finally:
        again.proc.send_signal(signal.SIGINT)
        assert again.proc.wait(60) == 0


def test_ctrl_c_while_it_starts_stops_at_once_and_exits_130(folder: Path) -> None:
    """A trial: Ctrl-C while Temporal started was ignored until "is up", then exit 0."""
    proc, ports = start_dev(folder)
    assert proc.stdout is not None
    lines, seen = Lines(proc.stdout), list[str]()
    deadline = time.monotonic() + 120
    try:
        while (line := lines.next(deadline, seen)) is not None:
            seen.append(line.rstrip())
            if line.startswith("starting Temporal"):
                break
        proc.send_signal(signal.SIGINT)
        status = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    while (line := lines.next(time.monotonic() + 10, seen)) is not None:
        seen.append(line.rstrip())
    assert status == 130, seen
    assert seen[-1] == "interrupted while starting: stopped; nothing left running.", seen
    assert not any("is up" in line for line in seen), seen
    assert not (folder / ".refundflow" / "stack.json").exists()
    listening = [port for port in ports.values() if port_in_use(port)]
    assert not listening, f"still listening after the interrupted start: {listening}"


def check_the_api_and_a_dev_token(folder: Path, env: dict[str, str], port: int) -> None:
    """`refundflow token --as li` from the folder signs a token the stack's API accepts."""
    made = run_in(folder, env, "worker.cli", "token", "--as", "li", "--json")
    assert made.returncode == 0, made.stderr
    minted = json.loads(made.stdout)
    assert (minted["subject"], minted["roles"]) == ("li", ["lead"])
    assert minted["api_url"] == f"http://127.0.0.1:{port}"
    key = folder / ".refundflow" / "issuer" / "signing-key.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    asked = urllib.request.Request(
        f"{minted['api_url']}/v1/policies/standard-v3",
        headers={"Authorization": f"Bearer {minted['access_token']}"},
    )
    with urllib.request.urlopen(asked, timeout=10) as answer:
        assert json.loads(answer.read())["version"] == 3
    # The CLI's refund commands go through that API, as the directory's default member or
    # as whom --as names, found from the folder with no variables.
    listed = run_in(folder, env, "worker.cli", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    mine = run_in(folder, env, "worker.cli", "--as", "cust_nobody", "list", "--json")
    assert (mine.returncode, json.loads(mine.stdout)) == (0, []), mine.stderr


def run_in(folder: Path, env: dict[str, str], module: str, *args: str) -> CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
