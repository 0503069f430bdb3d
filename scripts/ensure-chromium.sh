#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests, only when it is missing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ -x /usr/bin/chromium ]; then
    exit 0
fi
log "installing Debian chromium (browser tests need /usr/bin/chromium)"
export DEBIAN_FRONTEND=noninteractive
as_root apt-get update -qq
as_root apt-get install -y -qq --no-install-recommends chromium fonts-liberation </dev/null
[ -x /usr/bin/chromium ] || die "chromium did not install"
