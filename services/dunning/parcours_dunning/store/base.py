from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Dunning's tables (its own MetaData, next to the runtime's outbox/inbox/api_keys)."""
