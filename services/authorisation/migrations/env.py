from services.common.migrations_env import run

run()
