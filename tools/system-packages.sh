#!/usr/bin/env bash
# Install the Debian packages the nox sessions need (tools/system-packages.txt)
# when their programs are missing. Quiet when there is nothing to do; apt's
# output is shown only when it fails. Never run by a nox session: the
# README's test command (and so .ci/run) runs it first.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
missing=()
while read -r program package _; do
  case "$program" in ''|'#'*) continue ;; esac
  command -v "$program" >/dev/null 2>&1 || missing+=("$package")
done < "$here/system-packages.txt"
[ ${#missing[@]} -eq 0 ] && exit 0

echo "system packages: installing ${missing[*]} (Debian)"
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" -ne 0 ]; then
  echo "error: cannot install ${missing[*]} here (needs apt-get, as root)." >&2
  echo "Install them yourself, then run the command again:" >&2
  echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "error: apt-get could not install ${missing[*]}" >&2
  exit 1
fi
echo "system packages: installed ${missing[*]}"
