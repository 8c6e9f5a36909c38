"""Create the persons table and seed a few people.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
compatibility = "expand"  # the previous release's code works on the schema it leaves (services/common/schema.py)


def upgrade() -> None:
    persons = op.create_table(
        "persons",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("first_name", sa.String(100), nullable=False),
        sa.Column("last_name", sa.String(100), nullable=False),
        sa.Column("email", sa.String(254), nullable=False, server_default=""),
    )
    op.bulk_insert(
        persons,
        [
            {"id": 1, "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"},
            {"id": 2, "first_name": "Alan", "last_name": "Turing", "email": "alan@example.org"},
            {"id": 3, "first_name": "Grace", "last_name": "Hopper", "email": "grace@example.org"},
        ],
    )


def downgrade() -> None:
    op.drop_table("persons")
