"""What the README shows without a running system: `make up`'s output and the table of
dependencies. (Its API examples run against a stack: tests/readme/test_readme.py.)"""

from __future__ import annotations

import re
import tomllib

from devstack.layout import Layout
from devstack.stack import urls_block
from devstack.topology import REPO, workloads

README = (REPO / "README.md").read_text()


def indented_block_after(marker: str) -> list[str]:
    """The 4-space indented lines of the first block after the line holding `marker`."""
    lines = README[README.index(marker) :].splitlines()[1:]
    while not lines[0].startswith("    "):
        lines.pop(0)
    block = []
    for line in lines:
        if not line.startswith("    "):
            break
        block.append(line[4:])
    return block


def test_make_up_output_is_the_real_one():
    # The default ports of `make up`: the ingress on 8080, everything else from 18000.
    expected = urls_block(Layout(REPO / ".run", 8080, 18000), workloads()).splitlines()
    shown = indented_block_after("`make up` prints")
    assert shown == expected, "README: replace the `make up` block with:\n" + "\n".join(
        f"    {line}" for line in expected
    )


def dependency_table() -> list[str]:
    section = README[README.index("## Dependencies, and why each") :]
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| package"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line)
    # A blank line ends a Markdown table: every row after it would render as text.
    rest = "\n".join(lines[start + 2 + len(rows) :])
    assert not re.search(r"^\|", rest.split("\n## ")[0], re.MULTILINE), "a row after a gap"
    return [row.split("|")[1] for row in rows]


def test_every_dependency_has_a_row_in_the_table():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["dev"]
    names = {re.match(r"[A-Za-z0-9_.-]+", spec)[0].lower() for spec in requirements}
    listed = {
        name.strip().lower()
        for cell in dependency_table()
        for name in cell.replace("`", "").split(",")
    }
    assert names <= listed, f"README's Dependencies table lacks {sorted(names - listed)}"
