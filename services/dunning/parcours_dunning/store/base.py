from collections.abc import Iterable

from sqlalchemy import ColumnElement, and_, any_, literal
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Dunning's tables (its own MetaData, next to the runtime's outbox/inbox/api_keys)."""


def among(first: ColumnElement, second: ColumnElement, pairs: Iterable[tuple]) -> ColumnElement[bool]:
    """`first = ANY(firsts) AND second = ANY(seconds)`: the rows of these pairs, read through an
    index on (first, second) in one statement text whatever their number (one prepared statement).

    A superset when the pairs mix several firsts (every first with every second): callers keep
    the pairs they asked for. Not `(first, second) IN (SELECT unnest(...))`: its generic plan
    guesses 10 pairs and hash-joins a sequential scan of the whole table on small tables, which
    grows with the table (quadratic over a run); nor a list of literals: one statement per count."""
    pairs = list(pairs)
    return and_(first == any_(literal(sorted({p[0] for p in pairs}), ARRAY(first.type))),
                second == any_(literal(sorted({p[1] for p in pairs}), ARRAY(second.type))))
