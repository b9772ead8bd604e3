"""Alembic environment: run by Store.migrate() on a connection it already holds."""

from alembic import context

from appliance.fleet.store import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
