"""The kind flow's scripts, run here without a cluster: docker, kind, kubectl and helm are
shell stubs (fake-tool.sh) that record every call, since the real programs cannot run on
a machine without Docker-in-Docker and network access. This is the one place where a stub
is the right tool: what is checked is which commands the scripts run, in which order,
with which pinned versions, and what they do when a step fails."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devstack.topology import REPO
from tests.chart.conftest import helm_binary

HERE = Path(__file__).resolve().parent
FAKED = ("docker", "kind", "kubectl", "helm")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    calls: list[list[str]] = field(default_factory=list)
    stdins: dict[int, str] = field(default_factory=dict)  # call index -> what it read

    def commands(self, *tools: str) -> list[list[str]]:
        return [c for c in self.calls if not tools or c[0] in tools]


@pytest.fixture(scope="session")
def system_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The system's programs, but none of the four: a real docker or kubectl on this
    machine must never be reached, nor found when a test removes a stand-in."""
    bin_dir = tmp_path_factory.mktemp("system-bin")
    for directory in ("/usr/local/bin", "/usr/bin", "/bin"):
        for program in Path(directory).iterdir():
            target = bin_dir / program.name
            if program.name not in FAKED and not target.exists() and os.access(program, os.X_OK):
                target.symlink_to(program)
    return bin_dir


@pytest.fixture
def fakes(tmp_path: Path) -> Path:
    """A bin directory holding the four stand-ins (and nothing else)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in FAKED:
        (bin_dir / tool).symlink_to(HERE / "fake-tool.sh")
    return bin_dir


@pytest.fixture
def cluster_sh(fakes: Path, system_bin: Path, tmp_path: Path) -> Callable[..., Run]:
    """tools/cluster.sh with the stand-ins first on PATH; FAKE_* settings steer them."""
    state = tmp_path / "state"
    state.mkdir()

    def run(*args: str, shell: tuple[str, ...] = ("bash",), **env: str) -> Run:
        (state / "calls").write_text("")
        environment = {
            "PATH": os.pathsep.join([str(fakes), str(system_bin)]),
            "HOME": str(tmp_path),
            "FAKE_DIR": str(state),
            "REAL_HELM": helm_binary(),
            "K8S_TOOLS_BIN": str(fakes),  # the pinned helm and kubectl: the stand-ins
            **env,
        }
        result = subprocess.run(
            [*shell, str(REPO / "tools" / "cluster.sh"), *args],
            capture_output=True, text=True, env=environment, timeout=120, check=False,
        )  # fmt: skip
        raw = (state / "calls").read_text()
        calls = [record.split("\x1f") for record in raw.split("\x1e") if record]
        stdins = {
            int(path.name.split("-")[1]) - 1: path.read_text() for path in state.glob("stdin-*")
        }
        for path in state.glob("stdin-*"):
            path.unlink()
        return Run(result.returncode, result.stdout, result.stderr, calls, stdins)

    return run


def without(fakes: Path, tool: str) -> None:
    (fakes / tool).unlink()


@pytest.fixture
def shellcheck() -> str:
    found = shutil.which("shellcheck")
    if not found:
        pytest.fail("shellcheck is not installed: run `make setup` (Debian's shellcheck)")
    return found
