"""The catalogue: SQLAlchemy models, migrations and the one-writer database handle."""
