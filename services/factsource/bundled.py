"""The bundled cat facts (facts.txt, one per line), read once when the module loads."""

from __future__ import annotations

from importlib import resources


def load_facts() -> tuple[str, ...]:
    text = resources.files(__package__).joinpath("facts.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


FACTS = load_facts()


def facts_up_to(max_length: int | None) -> tuple[str, ...]:
    """Every fact, or those at most `max_length` characters long (catfact's filter)."""
    if max_length is None:
        return FACTS
    return tuple(fact for fact in FACTS if len(fact) <= max_length)
