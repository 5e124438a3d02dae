"""Alembic environment: run on the connection the Store hands in (Store.migrate)."""

from alembic import context

from webhook.store import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
