from services.common.server import main
from services.frontend.app import build

main("frontend", 8081, build)
