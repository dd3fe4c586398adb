from collections.abc import Iterable

from sqlalchemy import ColumnElement, func, literal, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Dunning's tables (its own MetaData, next to the runtime's outbox/inbox/api_keys)."""


def pair_in(first: ColumnElement, second: ColumnElement, pairs: Iterable[tuple]) -> ColumnElement[bool]:
    """`(first, second) IN pairs`, the pairs sent as two arrays: one statement text (one prepared
    statement, one plan) whatever their number, where a list of literals makes one per count."""
    pairs = list(pairs)
    rows = func.unnest(literal([p[0] for p in pairs], ARRAY(first.type)),
                       literal([p[1] for p in pairs], ARRAY(second.type))).table_valued("a", "b").render_derived()
    return tuple_(first, second).in_(select(rows.c.a, rows.c.b))
