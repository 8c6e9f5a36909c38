#!/bin/sh
# The entrypoint of k8sdeploy's mariadb base (deploy/builders/mariadb.py bakes it in as /usr/local/bin/k8sdeploy-mariadb).
#
# Runs as any non-root user with a read-only root file system; writable are /var/lib/mysql (the data volume, which
# may hold lost+found: the data is in its subdirectory data/), /var/run/mysqld (socket and pid file) and /tmp.
# The first start (no /var/lib/mysql/data) initialises the data directory as `mariadb-install-db` would, in
# data.new, sets root's password from $MYSQL_ROOT_PASSWORD and runs /docker-entrypoint-initdb.d/*.sql in name order;
# only then is data.new renamed data, so a crash at any moment leaves no data directory (the next start begins
# again) or a complete one. Every start then execs mariadbd; arguments given to the container are added to its own
# (a later --port=N overrides --port=3306). mariadbd shuts down cleanly on SIGTERM.
#
# The *.sql files are read by `mariadbd --bootstrap`, one statement per line: a line ends a statement with `;`.
set -eu

ROOT=/var/lib/mysql
DATA=$ROOT/data
NEW=$ROOT/data.new
RUN=/var/run/mysqld
SHARE=/usr/share/mysql
INIT=/docker-entrypoint-initdb.d
LOG=/tmp/k8sdeploy-mariadb-bootstrap.log
DONE=/tmp/k8sdeploy-mariadb-sql-complete
# what mariadb-install-db feeds the bootstrap, in its order (the test database left out)
SYSTEM_SQL="mysql_system_tables.sql mysql_performance_tables.sql mysql_system_tables_data.sql fill_help_tables.sql
maria_add_gis_sp_bootstrap.sql mysql_sys_schema.sql"
# the server's options when bootstrapping and when serving: databases get utf8mb4 when they are created
COMMON="--no-defaults --tmpdir=/tmp --character-set-server=utf8mb4"

say() {
    echo "k8sdeploy-mariadb: $*" >&2
}

check_password() {
    case "${MYSQL_ROOT_PASSWORD-}" in
    "")
        say "MYSQL_ROOT_PASSWORD is not set: it is root's password, needed to start"
        exit 2
        ;;
    *[!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-]*)
        say "MYSQL_ROOT_PASSWORD may hold only letters, digits, _ and - (it goes into SQL): it holds something else"
        exit 2
        ;;
    esac
}

# The bootstrap's input. `set -e` does not hold in a pipeline's function: each step says when it fails, and the
# marker file is written only after the last one.
bootstrap_sql() {
    say "creating the system tables"
    # @auth_root_socket NULL: root logs in with a password, not by its unix user (install-db's
    # --auth-root-authentication-method=normal); no anonymous users (they come with the test database only)
    printf '%s\n' "create database if not exists mysql;" "use mysql;" "SET @auth_root_socket=NULL;"
    for file in $SYSTEM_SQL; do
        cat "$SHARE/$file" || return 1
    done
    # Only root@localhost of the password-less roots the system tables made stays (no root@<this host's name>,
    # 127.0.0.1, ::1). The grant tables are loaded once, after that: a second FLUSH PRIVILEGES makes the bootstrap
    # fail without saying why when a later statement fails.
    say "setting root's password (root@localhost and root@%)"
    printf '%s\n' \
        "DELETE FROM mysql.global_priv WHERE User = 'root' AND Host <> 'localhost';" \
        "DELETE FROM mysql.proxies_priv WHERE Host <> 'localhost';" \
        "FLUSH PRIVILEGES;" \
        "ALTER USER 'root'@'localhost' IDENTIFIED BY '$MYSQL_ROOT_PASSWORD';" \
        "CREATE USER 'root'@'%' IDENTIFIED BY '$MYSQL_ROOT_PASSWORD';" \
        "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    for file in "$INIT"/*.sql; do
        [ -f "$file" ] || continue
        say "running $file"
        cat "$file" || return 1
        echo
    done
    : >"$DONE"
}

initialise() {
    if [ -e "$NEW" ]; then
        say "removing $NEW, left by a start that did not finish"
        rm -rf "$NEW"
    fi
    say "initialising the data directory in $NEW"
    mkdir -m 0700 "$NEW"
    rm -f "$DONE"
    # shellcheck disable=SC2086 # COMMON is a list of options
    if ! bootstrap_sql | mariadbd $COMMON --bootstrap --datadir="$NEW" --enforce-storage-engine="" \
        --max_allowed_packet=8M --net_buffer_length=16K >"$LOG" 2>&1; then
        say "bootstrapping $NEW failed (it is removed at the next start); the server said:"
        grep -v '\[Note\]' "$LOG" | tail -n 20 >&2
        exit 1
    fi
    if [ ! -e "$DONE" ]; then
        say "the bootstrap's SQL could not be read in full; $NEW is removed at the next start"
        exit 1
    fi
    rm -f "$DONE" "$LOG"
    sync
    mv "$NEW" "$DATA"
    say "data directory $DATA is ready"
}

check_password
if [ ! -d "$DATA" ]; then
    initialise
fi
say "starting mariadbd on $DATA"
# shellcheck disable=SC2086
exec mariadbd $COMMON --datadir="$DATA" --socket="$RUN/mysqld.sock" --pid-file="$RUN/mysqld.pid" --port=3306 \
    --bind-address=0.0.0.0 --skip-name-resolve "$@"
