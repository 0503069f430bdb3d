#!/usr/bin/env bash
# Install Debian's wrk for `make bench` (the HTTP load generator, in C), only when it is missing.
# Without it bench/load.py falls back to a Python client that competes with the server for the CPU.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if command -v wrk >/dev/null 2>&1; then
    exit 0
fi
log "installing Debian wrk (make bench's load generator)"
export DEBIAN_FRONTEND=noninteractive
as_root apt-get update -qq
as_root apt-get install -y -qq --no-install-recommends wrk </dev/null
command -v wrk >/dev/null 2>&1 || die "wrk did not install"
