#!/usr/bin/env bash
# Installs the third-party memcache clients that lanner-client's compatibility tests drive
# (crates/client/tests/third_party_*.rs), at the exact versions docs/clients.md reports:
#
#   Python (a venv):  pymemcache, python-memcached   -> target/third-party-clients/venv
#   Node.js (npm):    memcached                      -> target/third-party-clients/node
#
# Idempotent: a client already installed at its pinned version is left alone. A missing
# interpreter or an unreachable registry is reported and skipped (exit 0): the tests then skip
# the affected client with a printed message instead of failing.
set -uo pipefail
cd "$(dirname "$0")/.."

PYMEMCACHE_VERSION=4.0.0
PYTHON_MEMCACHED_VERSION=1.62
NODE_MEMCACHED_VERSION=2.2.2

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
dir="$target_dir/third-party-clients"
mkdir -p "$dir"

install_python() {
    if ! command -v python3 >/dev/null 2>&1; then
        echo "install-test-clients: python3 not found; Python client tests will skip"
        return
    fi
    local venv="$dir/venv"
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv" || {
            echo "install-test-clients: could not create $venv; Python client tests will skip"
            return
        }
    fi
    if "$venv/bin/python" - "$PYMEMCACHE_VERSION" "$PYTHON_MEMCACHED_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(0 if (version("pymemcache"), version("python-memcached")) == (sys.argv[1], sys.argv[2]) else 1)
PY
    then
        echo "install-test-clients: pymemcache $PYMEMCACHE_VERSION and python-memcached $PYTHON_MEMCACHED_VERSION already installed"
        return
    fi
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "pymemcache==$PYMEMCACHE_VERSION" "python-memcached==$PYTHON_MEMCACHED_VERSION" \
        || echo "install-test-clients: pip install failed; Python client tests will skip"
}

install_node() {
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        echo "install-test-clients: node or npm not found; Node.js client tests will skip"
        return
    fi
    local prefix="$dir/node"
    local manifest="$prefix/node_modules/memcached/package.json"
    if [ -f "$manifest" ] && grep -q "\"version\": \"$NODE_MEMCACHED_VERSION\"" "$manifest"; then
        echo "install-test-clients: memcached $NODE_MEMCACHED_VERSION (npm) already installed"
        return
    fi
    mkdir -p "$prefix"
    npm install --prefix "$prefix" --no-audit --no-fund --no-save --loglevel=error \
        "memcached@$NODE_MEMCACHED_VERSION" \
        || echo "install-test-clients: npm install failed; Node.js client tests will skip"
}

install_python
install_node
