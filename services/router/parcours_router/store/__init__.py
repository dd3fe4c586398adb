"""The router's own database: its customer directory and its memory of routing decisions."""

from parcours_router.store.base import Base
from parcours_router.store import customers, dispatches  # noqa: F401  (registers the tables on Base.metadata)

metadata = Base.metadata
