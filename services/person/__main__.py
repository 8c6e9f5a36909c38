from pathlib import Path

from services.common.server import main
from services.person.app import build

main("person", 8085, build, Path(__file__).parent / "migrations")
