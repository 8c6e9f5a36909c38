"""Sessions with an idle timeout, an absolute lifetime and a role, and the login proofs already opened.

Each session gains a public id (`session_id`, named in the user context: never the token), the user's role and
address as they were when it was last looked at, when it began and when it was last used. A session of before this
revision has none of these and is not taken by the new code (its user logs in again); the columns are nullable so
that the previous release's code, which writes only token_hash, caller_id and expires_at, still works.

`login_proofs` keeps the `jti` of every login proof a session was opened with, until the proof has expired: a proof
opens one session only.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
compatibility = "expand"  # nullable columns and a new table (services/common/schema.py)


def upgrade() -> None:
    with op.batch_alter_table("sessions") as table:
        table.add_column(sa.Column("session_id", sa.String(32), nullable=True))
        table.add_column(sa.Column("role", sa.String(20), nullable=True))
        table.add_column(sa.Column("email", sa.String(254), nullable=True))
        table.add_column(sa.Column("created_at", sa.DateTime, nullable=True))
        table.add_column(sa.Column("last_seen_at", sa.DateTime, nullable=True))
    op.create_index("sessions_caller", "sessions", ["caller_id"])
    op.create_table(
        "login_proofs",
        sa.Column("jti", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime, nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("login_proofs")
    op.drop_index("sessions_caller", "sessions")
    with op.batch_alter_table("sessions") as table:
        for column in ("last_seen_at", "created_at", "email", "role", "session_id"):
            table.drop_column(column)
