#!/usr/bin/env bash
# Installs the peer renderer (Satori + resvg-js, pinned in package.json) into
# benchmarks/peers/node_modules. Not part of ogshot's install: only benchmarks/peers.py needs it.
set -euo pipefail
cd "$(dirname "$0")"
command -v node >/dev/null || { echo "peers: node is required (apt-get install nodejs npm)" >&2; exit 1; }
if [ -f node_modules/.ogshot-installed ] && [ node_modules/.ogshot-installed -nt package.json ]; then
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
touch node_modules/.ogshot-installed
