from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """The router's tables (its own MetaData, next to the runtime's outbox/inbox/api_keys)."""
