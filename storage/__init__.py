"""Persistence: SQLModel models, engine and unit of work, repositories, Alembic migrations."""
