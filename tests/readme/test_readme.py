"""The README's "The API" section is true, example by example.

Every `curl` line of that section runs as written (through bash, after the section's
variable lines such as `U=...` that come before it), against AGORA_URL instead of
localhost:8080, in the order the README gives them, on the fresh stack `make integration`
starts (the Makefile runs tests/readme before every other suite, as a newcomer runs the
lines right after `make up`).

The convention, for whoever adds an example (docs/architecture.md says it too): a curl
line shows its status and headers (`curl -si`), and the comment lines after it state
what it answers:

    # -> 201 Location: /api/v1/brands/1          the status, then a header it must carry
    # -> {"id": 1, "name": "Acme", ...}          JSON it must contain
    # ~> 200 {"total": 2}                        the same, reached within a few seconds

A line may hold the status, a header (`Name: value`) or a JSON value. JSON is matched as
a subset: an object may have more fields than shown, `"..."` stands for any value, and a
list ending in `...` may have more items (otherwise it has exactly those). Every curl
line must have such a statement.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from devstack.topology import REPO

README = REPO / "README.md"
SECTION = "## The API"
ANY = "..."
MORE = "\u2026more"  # a list's trailing `...`
EVENTUALLY_SECONDS = 15
ASSIGNMENT = re.compile(r"^[A-Z][A-Z0-9_]*=")
EXPECTATION = re.compile(r"^#\s*(->|~>)\s*(.*)$")
STATUS = re.compile(r"^(\d{3})\b\s*(.*)$")
HEADER = re.compile(r"^([A-Za-z][A-Za-z0-9-]*):\s*(.+)$")


@dataclass
class Example:
    command: str
    line: int
    assignments: list[str] = field(default_factory=list)  # the variable lines before it
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    bodies: list[Any] = field(default_factory=list)
    eventually: bool = False

    def expect(self, text: str) -> None:
        match = STATUS.match(text)
        if match:
            assert self.status is None, f"README line {self.line}: a second status"
            self.status, text = int(match[1]), match[2].strip()
        if not text:
            return
        header = HEADER.match(text)
        if header and not text.startswith(("{", "[")):
            self.headers[header[1]] = header[2].strip()
        else:
            self.bodies.append(parse_expected_json(text, self.line))


def parse_expected_json(text: str, line: int) -> Any:
    spelled = re.sub(r",\s*\.\.\.\s*\}", "}", text)  # objects are subsets anyway
    spelled = re.sub(r"\{\s*\.\.\.\s*\}", "{}", spelled)
    spelled = re.sub(r"(,\s*|\[\s*)\.\.\.(\s*\])", rf'\1"{MORE}"\2', spelled)
    try:
        return json.loads(spelled)
    except json.JSONDecodeError as error:
        raise AssertionError(f"README line {line}: not JSON after `# ->`: {text}") from error


def examples() -> list[Example]:
    """The section's curl examples, in order, each with the variable lines before it."""
    text = README.read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    lines = text[start:end].splitlines()
    first_line = text[:start].count("\n") + 1
    assignments: list[str] = []
    found: list[Example] = []
    index = 0
    while index < len(lines):
        stripped = lines[index].strip()
        number = first_line + index
        index += 1
        if ASSIGNMENT.match(stripped):
            assignments.append(stripped)
        elif stripped.startswith("curl "):
            command, _, trailing = stripped.partition(" # ")
            while command.endswith("\\") and index < len(lines):
                command = command[:-1] + " " + lines[index].strip()
                index += 1
            command, _, more = command.partition(" # ")
            example = Example(command.strip(), number, list(assignments))
            for comment in (trailing, more):
                if comment:
                    add_expectation(example, "# " + comment)
            found.append(example)
        elif found and EXPECTATION.match(stripped):
            add_expectation(found[-1], stripped)
    return found


def add_expectation(example: Example, comment: str) -> None:
    match = EXPECTATION.match(comment.strip())
    if match:
        example.eventually |= match[1] == "~>"
        example.expect(match[2].strip())


def matches(expected: Any, actual: Any) -> bool:
    if expected == ANY:
        return True
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and matches(value, actual[key]) for key, value in expected.items()
        )
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return False
        if expected and expected[-1] == MORE:
            expected = expected[:-1]
            actual = actual[: len(expected)]
        return len(expected) == len(actual) and all(map(matches, expected, actual))
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    return expected == actual


def run(command: str, assignments: list[str], host: str) -> tuple[int, dict[str, str], str]:
    script = "\n".join([*assignments, command])
    script = script.replace("localhost:8080", host).replace("127.0.0.1:8080", host)
    result = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"{command}\n{result.stderr}"
    head, _, body = result.stdout.replace("\r\n", "\n").partition("\n\n")
    status_line, *header_lines = head.splitlines()
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def failures(example: Example, answer: tuple[int, dict[str, str], str]) -> list[str]:
    status, headers, body = answer
    problems = []
    if status != example.status:
        problems.append(f"status {status}, not {example.status}")
    for name, value in example.headers.items():
        if headers.get(name.lower()) != value:
            problems.append(f"{name}: {headers.get(name.lower())!r}, not {value!r}")
    if example.bodies:
        try:
            parsed = json.loads(body)
        except json.JSONDecodeError:
            return [*problems, f"the body is not JSON: {body[:200]!r}"]
        problems += [f"the body lacks {b}" for b in example.bodies if not matches(b, parsed)]
    return problems


def test_every_example_states_what_it_answers():
    found = examples()
    assert len(found) >= 20, "the API section lost its examples"
    for example in found:
        assert example.status is not None, f"README line {example.line}: no `# -> STATUS`"
        assert re.search(r"(^|\s)-\w*i", example.command), (
            f"README line {example.line}: show the status and headers (curl -si)"
        )


def test_every_example_answers_as_the_readme_says(agora_url):
    host = urlsplit(agora_url).netloc
    found = examples()
    wrong = []
    for example in found:
        deadline = time.monotonic() + (EVENTUALLY_SECONDS if example.eventually else 0)
        while True:
            answer = run(example.command, example.assignments, host)
            problems = failures(example, answer)
            if not problems or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        if problems:
            wrong.append(
                f"README line {example.line}: {example.command}\n  "
                + "; ".join(problems)
                + f"\n  answered: {answer[2][:300]}"
            )
    assert not wrong, "the README's API section is not true (on a fresh stack):\n" + "\n".join(
        wrong
    )
