"""Alembic environment: runs on the connection given by agora.store.migrate (never opens its own), or, offline, writes
the SQL for the dialect it names (``agora db upgrade --sql``)."""

from alembic import context

from agora.store.schema import metadata

attributes = context.config.attributes
if context.is_offline_mode():
    dialect = attributes["dialect"]
    context.configure(
        dialect_name=dialect,
        output_buffer=attributes["output_buffer"],
        literal_binds=True,
        target_metadata=metadata,
        render_as_batch=dialect == "sqlite",
    )
else:
    connection = attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
with context.begin_transaction():
    context.run_migrations()
