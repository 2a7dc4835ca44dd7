"""The word rule: a fact is kept when it contains the word "cat" or "cats", in any case.

`\b` is a Unicode word boundary, so letters, digits and "_" on either side make a longer
word ("bobcat", "category", "caté", "cat5") while punctuation does not ("cat's", "cats'",
"cat-like", "Cats!"). Text is NFKC-normalised first, so full-width "CATS" counts too.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

CAT_WORD = re.compile(r"\bcats?\b", re.IGNORECASE)


def mentions_cat(text: str) -> bool:
    if not text.isascii():  # ASCII is already in NFKC
        text = unicodedata.normalize("NFKC", text)
    return CAT_WORD.search(text) is not None


def keep_cat_facts(facts: Iterable[str]) -> list[str]:
    return [fact for fact in facts if mentions_cat(fact)]
