#!/usr/bin/env bash
# Installs the offline corpora (Debian packages) and headless Chromium for the
# report test. Without apt or root it only says what is missing.
set -u
pkgs=(linux-doc-6.1 dataset-fashion-mnist chromium)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "note: not installed: ${missing[*]} (needs apt as root). Point --corpus at any folder of text instead." >&2
fi
exit 0
