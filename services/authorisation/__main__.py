from pathlib import Path

from services.authorisation.app import build
from services.common.server import main

main("authorisation", 8083, build, Path(__file__).parent / "migrations")
