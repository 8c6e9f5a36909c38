from pathlib import Path

from services.common.server import main
from services.session.app import build

main("session", 8084, build, Path(__file__).parent / "migrations")
