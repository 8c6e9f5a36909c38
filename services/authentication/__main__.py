from pathlib import Path

from services.authentication.app import build
from services.common.server import main

main("authentication", 8082, build, Path(__file__).parent / "migrations")
