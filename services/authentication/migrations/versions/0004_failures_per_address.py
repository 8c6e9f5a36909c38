"""Failed logins counted per (account, client address), and addresses compared as stored: existing addresses
normalised (NFKC, case-folded, trimmed: services/common/seed.py) and, on MariaDB, the column's collation binary,
so that no accent or case variant reaches a user with a count of its own.

The old per-account counts are dropped: they were keyed by the address as typed, and a window lasts 15 minutes.

Revision ID: 0004
"""

import logging
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
# the previous release's code counts failures in columns this replaces (services/common/schema.py)
compatibility = "contract"

log = logging.getLogger(__name__)


def normalised(raw: str) -> str:
    """services/common/seed.py's normalise_email as of this revision (a migration keeps its own copy)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", raw).casefold()).strip()


def upgrade() -> None:
    op.drop_table("login_failures")
    op.create_table(
        "login_failures",
        sa.Column("account_hash", sa.String(64), primary_key=True),
        sa.Column("address_hash", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("first_failure_at", sa.DateTime, nullable=False),
        sa.Column("last_failure_at", sa.DateTime, nullable=False),
    )
    connection = op.get_bind()
    if connection.dialect.name in ("mysql", "mariadb"):
        op.execute("ALTER TABLE users MODIFY email VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL")
    users = sa.table("users", sa.column("id", sa.Integer), sa.column("email", sa.String))
    rows = connection.execute(sa.select(users.c.id, users.c.email).order_by(users.c.id)).all()
    taken = {email for _, email in rows}
    for user_id, email in rows:
        wanted = normalised(email)
        if wanted == email:
            continue
        if wanted in taken:  # two users that are one address now: the seeding of the next start decides
            log.warning("user %d's address is another user's once normalised; left as it was", user_id)
            continue
        connection.execute(users.update().where(users.c.id == user_id).values(email=wanted))
        taken.discard(email)
        taken.add(wanted)


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name in ("mysql", "mariadb"):
        op.execute("ALTER TABLE users MODIFY email VARCHAR(254) NOT NULL")
    op.drop_table("login_failures")
    op.create_table(
        "login_failures",
        sa.Column("email_hash", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("first_failure_at", sa.DateTime, nullable=False),
    )
