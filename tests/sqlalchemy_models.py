"""The ORM models the SQLAlchemy dialect tests share (tests/test_sqlalchemy*.py)."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Counter(Base):
    """One row the read-modify-write tests increment."""

    __tablename__ = "counter"
    id: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[int]


class Book(Base):
    """Rows with a unique title: IntegrityError on a duplicate."""

    __tablename__ = "book"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(unique=True)
