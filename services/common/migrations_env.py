"""The body of every service's Alembic env.py: migrate on the connection the service hands over, recording each
step with its compatibility mark (services/common/schema.py)."""

from __future__ import annotations

from alembic import context

from .schema import ensure_steps_table, record_step


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through services.common.db.Migrations, which passes a connection")
    context.configure(
        connection=connection,
        render_as_batch=connection.dialect.name == "sqlite",
        on_version_apply=record_step,
    )
    ensure_steps_table(connection)
    with context.begin_transaction():
        context.run_migrations()
