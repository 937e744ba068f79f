"""Alembic migrations, shipped inside the package so an installed tilfreds can upgrade itself."""
