"""The `mariadb` base: MariaDB's server from Debian bookworm (mariadb-server-core, 10.11), an image that runs as it is
(the server of database = "mysql" when the environment names no mysql_image).

Its root file system gets the start script k8sdeploy-mariadb.sh (beside this module, package data) as ENTRYPOINT;
the data directory is a volume, so whatever the packages' scripts left in /var/lib/mysql goes. What the script
does: its own header.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from functools import cache
from pathlib import Path

PACKAGE = "mariadb-server-core"  # /usr/sbin/mariadbd and the system tables' SQL in /usr/share/mysql
SCRIPT = Path(__file__).with_name("k8sdeploy-mariadb.sh")
ENTRYPOINT = "/usr/local/bin/k8sdeploy-mariadb"
PORT = 3306
SERVER_USER = 10001  # bases.APP_USER
# The mount points: the data volume (the data itself in its data/) and the socket's directory, owned by the user the
# server runs as (a Docker volume made from the image takes their owner and mode), and the init scripts' directory.
MOUNT_POINTS = {
    "var/lib/mysql": (SERVER_USER, 0o700),
    "run/mysqld": (SERVER_USER, 0o700),
    "docker-entrypoint-initdb.d": (0, 0o755),
}
RUNTIME = {
    "Entrypoint": [ENTRYPOINT],
    "User": f"{SERVER_USER}:{SERVER_USER}",  # mariadbd refuses to run as root
    "ExposedPorts": {f"{PORT}/tcp": {}},
    "StopSignal": "SIGTERM",  # mariadbd shuts down cleanly on it
}


@cache
def recipe() -> str:
    """Changes when what this module adds changes, so that the base cached on disk is built again."""
    made_of = repr((PACKAGE, ENTRYPOINT, MOUNT_POINTS, RUNTIME)).encode() + SCRIPT.read_bytes()
    return hashlib.sha256(made_of).hexdigest()[:16]


def finish_rootfs(rootfs: Path) -> None:
    """Before the layer is made: no data in the data directory, the mount points there, the start script in."""
    for relative, (owner, mode) in MOUNT_POINTS.items():
        directory = rootfs / relative  # /var/run/mysqld: /var/run is a link to /run in Debian
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        directory.chmod(mode)
        os.chown(directory, owner, owner)
    target = rootfs / ENTRYPOINT.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(SCRIPT.read_bytes())
    target.chmod(0o755)
