"""A search query, parsed into the terms PostgreSQL's full-text search matches: words
(stemmed, accents folded: the `agora_search` configuration, English), "phrases in
quotes", #hashtags and @usernames. Every term must match (AND). Bounded: at most
MAX_TERMS terms, each at most MAX_TERM characters, the whole at most MAX_QUERY."""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.kit.errors import ApiError, field_error

MAX_QUERY = 200
MAX_TERMS = 8
MAX_TERM = 100
CONFIG = "agora_search"

_TOKEN = re.compile(r'"([^"]*)"?|(\S+)')
_HASHTAG = re.compile(r"#(\w{1,100})")
_USERNAME = re.compile(r"@([A-Za-z0-9_.-]{3,30})")


@dataclass(frozen=True)
class Term:
    kind: str  # "word", "phrase", "tag" (a hashtag or a username: an exact lexeme)
    value: str


def _refuse(message: str) -> ApiError:
    """422: q fits the document (a string of 1 to 200 characters) but not these bounds."""
    return ApiError(
        422,
        message,
        code="query_invalid",
        details=[field_error("q", message, "query_invalid", "query")],
    )


def tag_lexeme(prefix: str, name: str) -> str:
    """How a hashtag ('#', casefolded) or a username ('@', lower case) is indexed."""
    return prefix + (name.casefold() if prefix == "#" else name.lower())


def parse(q: str) -> list[Term]:
    terms: list[Term] = []
    for match in _TOKEN.finditer(q):
        phrase, word = match.group(1), match.group(2)
        if phrase is not None:
            if phrase.strip():
                terms.append(Term("phrase", phrase.strip()))
            continue
        if tag := _HASHTAG.fullmatch(word):
            terms.append(Term("tag", tag_lexeme("#", tag.group(1))))
        elif user := _USERNAME.fullmatch(word.rstrip(".,;:!?")):
            terms.append(Term("tag", tag_lexeme("@", user.group(1))))
        else:
            terms.append(Term("word", word))
    if not terms:
        raise _refuse("q has no terms")
    if len(terms) > MAX_TERMS:
        raise _refuse(f"q has {len(terms)} terms; at most {MAX_TERMS}")
    if any(len(term.value) > MAX_TERM for term in terms):
        raise _refuse(f"a term of q is longer than {MAX_TERM} characters")
    return terms


def tsquery_sql(terms: list[Term], first_parameter: int) -> tuple[str, list[str]]:
    """The SQL expression of the tsquery (terms joined by &&) and its parameters,
    numbered from $first_parameter."""
    parts, values = [], []
    for number, term in enumerate(terms, start=first_parameter):
        if term.kind == "phrase":
            parts.append(f"phraseto_tsquery('{CONFIG}', ${number})")
            values.append(term.value)
        elif term.kind == "word":
            parts.append(f"plainto_tsquery('{CONFIG}', ${number})")
            values.append(term.value)
        else:  # a lexeme as it is, quoted for tsquery's input syntax
            parts.append(f"${number}::tsquery")
            values.append("'" + term.value.replace("'", "''").replace("\\", "\\\\") + "'")
    return "(" + " && ".join(parts) + ")", values
