#!/usr/bin/env bash
# Browser tests use Debian's headless Chromium; install it when we may (root, apt present).
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1
fi
command -v chromium >/dev/null 2>&1
