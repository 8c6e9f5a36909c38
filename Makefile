# The two commands of the README: `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# What `make demo` needs: a virtualenv, the Docker Engine, debootstrap for the Debian bases, and a static busybox
# for the local pods' 2 MB infra image. The tests need besides: nginx with Lua for the gateway, MariaDB for the
# MySQL path, Chromium for the browser test, an OCI registry; and for the real node of `make cluster`
# (tools/cluster/node.py): containerd and runc (docker.io has them), the bridge CNI plugin, socat (its way to the
# control plane and the registry), iptables for kube-proxy.
DEMO_PACKAGES := python3-venv docker.io debootstrap busybox-static
TEST_PACKAGES := nginx libnginx-mod-http-lua mariadb-server mariadb-client chromium docker-registry \
    containernetworking-plugins socat iptables
# pytest-xdist workers: most tests wait on processes (builds, containers, the control plane), not the CPU; each test
# file stays on one worker (its module fixtures and ordered steps). TEST_WORKERS=0 runs them one at a time.
TEST_WORKERS ?= 4

.PHONY: help system-deps demo-deps docker-engine venv kube-binaries cosign lint test run demo down cluster cluster-down lock clean bench \
    bench-local bench-dev bench-peers bench-login

help:
	@echo "make demo         deploy the suite on the local Docker Engine; print its URL and demo credentials"
	@echo "make down         remove the demo deployment"
	@echo "make test         install what is missing, then lint, type-check and run the test suite"
	@echo "make lint         ruff (lint and format check) and mypy only"
	@echo "make run          run the suite on 127.0.0.1:8080 in the foreground (Ctrl-C stops it)"
	@echo "make cluster      start a real Kubernetes control plane, a real node (containerd, kubelet, kube-proxy,"
	@echo "                  CoreDNS in a network namespace), KWOK nodes and a registry on 127.0.0.1;"
	@echo "                  print its kubeconfig (k8sdeploy up --env cluster deploys to it)"
	@echo "make cluster-down stop it and remove its state"
	@echo "make bench        build+push benchmark: our builder vs --builder docker (prints a table)"
	@echo "make bench-local  local pods: the pause image vs each pod's first image (prints a table)"
	@echo "make bench-dev    from save to served: k8sdeploy dev against the up path (prints a table)"
	@echo "make bench-peers  k8sdeploy against kubectl and Helm on one control plane (prints a table)"
	@echo "make bench-login  login latency under a wrong-password flood: 898652a against the working tree"
	@echo "                  (prints a table; BENCH_BASE=REF compares another commit)"
	@echo "make lock         re-resolve requirements/*.lock from requirements/*.in (needs network)"
	@echo "make clean        remove the virtualenv and run state"

# Installs the Debian packages of $(1) that are missing.
define apt-install
@missing=$$(for p in $(1); do \
    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
if [ -n "$$missing" ]; then \
    echo "installing Debian packages:" $$missing; \
    $(SUDO) apt-get update -qq && \
    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
fi
endef

demo-deps:
	$(call apt-install,$(DEMO_PACKAGES))

system-deps:
	$(call apt-install,$(DEMO_PACKAGES) $(TEST_PACKAGES))

docker-engine: demo-deps
	@scripts/ensure-dockerd.sh

venv: $(VENV)/.installed

# uv (pinned in requirements/bootstrap.lock) installs the locked wheels in parallel: seconds where pip takes
# half a minute on a cold cache. Unlike pip, uv compiles no bytecode unless asked: without it (a read-only install,
# or PYTHONDONTWRITEBYTECODE set) every run compiles some 2,000 modules again, a second and more; k8sdeploy's own
# modules (an editable install) are compiled beside their sources. The editable install puts the checkout on sys.path
# (setuptools' compat mode) rather than loading an import hook into every run (8 ms of each).
$(VENV)/.installed: requirements/bootstrap.lock requirements/dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements/bootstrap.lock
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python --require-hashes --no-deps \
	    -r requirements/dev.lock
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python --no-deps --no-build-isolation \
	    -C editable_mode=compat -e .
	$(BIN)/python -m compileall -q -j 0 cli.py deploy services suitekit tools
	touch $@

# kube-apiserver, kube-controller-manager, kube-scheduler, etcd and KWOK from the Go modules pinned in
# tools/cluster/*/go.mod, cached in ~/.cache/k8sdeploy/kube (a cold build takes about 6 minutes).
kube-binaries:
	@command -v go >/dev/null || { echo "Go is needed to build the control plane (tools/cluster)" >&2; exit 1; }
	@tools/cluster/build.sh >/dev/null

# cosign, the reference verifier the signing tests check k8sdeploy's signatures with, from the Go module pinned in
# tools/cosign/go.mod, cached in ~/.cache/k8sdeploy/cosign (a cold build takes about 6 to 12 minutes here).
cosign:
	@command -v go >/dev/null || { echo "Go is needed to build cosign (tools/cosign)" >&2; exit 1; }
	@tools/cosign/build.sh >/dev/null

# ruff and mypy, pinned in requirements/dev.lock; configured in pyproject.toml. A finding fails `make test`.
lint: venv
	$(BIN)/ruff check --quiet .
	$(BIN)/ruff format --check --quiet .
	$(BIN)/mypy

test: system-deps docker-engine venv kube-binaries cosign lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: system-deps docker-engine venv
	$(BIN)/python bench/build_bench.py

bench-local: system-deps docker-engine venv
	$(BIN)/python bench/local_bench.py

bench-dev: system-deps docker-engine venv
	$(BIN)/python bench/dev_bench.py

# kubectl and Helm are built from the Go modules pinned in tools/peers, cached in ~/.cache/k8sdeploy/peers (a cold
# build takes about 3 minutes here).
bench-peers: system-deps venv kube-binaries
	@command -v go >/dev/null || { echo "Go is needed to build kubectl and Helm (tools/peers)" >&2; exit 1; }
	$(BIN)/python bench/peers_bench.py

# The suite from source twice (python -m deploy.loopback: nginx with Lua, the services on SQLite), a git worktree of
# BENCH_BASE and then this working tree, one at a time, each flooded with wrong passwords for one account.
bench-login: system-deps venv
	$(BIN)/python bench/login_flood_bench.py

run: system-deps venv
	$(BIN)/python -m deploy.loopback

# The suite on the local Docker Engine, one pod; `k8sdeploy down` (or `make down`) removes it.
demo: demo-deps docker-engine venv
	$(BIN)/k8sdeploy up --layout single-pod

down: venv
	$(BIN)/k8sdeploy down --yes

cluster: system-deps venv kube-binaries
	@$(BIN)/python -m tools.cluster.controlplane up --registry --node

cluster-down: venv
	@$(BIN)/python -m tools.cluster.controlplane down

lock: venv
	cd requirements && ../$(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11 \
	    --python-platform x86_64-manylinux_2_28 --custom-compile-command "make lock" bootstrap.in -o bootstrap.lock
	cd requirements && ../$(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11 \
	    --python-platform x86_64-manylinux_2_28 --custom-compile-command "make lock" app.in -o app.lock
	cd requirements && ../$(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11 \
	    --python-platform x86_64-manylinux_2_28 --custom-compile-command "make lock" dev.in -o dev.lock

clean:
	rm -rf $(VENV) .run *.egg-info
