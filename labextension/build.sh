#!/bin/sh
# Rebuild hpchub's JupyterLab extension (the walltime notice) into src/hpchub/labextension,
# which is committed: installing hpchub needs no Node.js. Run after changing src/index.js.
# Needs Node.js and npm, and the site's Jupyter environment (for JupyterLab's core packages).
set -eu
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
rm -rf ../src/hpchub/labextension
node node_modules/@jupyterlab/builder/lib/build-labextension.js \
    --core-path "$(/opt/hpchub/jupyter/bin/python -c 'import jupyterlab, os; print(os.path.join(os.path.dirname(jupyterlab.__file__), "staging"))')" .
