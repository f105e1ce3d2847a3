#!/bin/bash
# apt-get install PACKAGE... as root (or with passwordless sudo), waiting while another apt-get or dpkg holds apt's locks.
# `apt-get install` waits for the dpkg lock itself (-o DPkg::Lock::Timeout); `apt-get update` does not wait for the package
# lists' lock (apt 2.6 fails at once, whatever the timeout), so it is retried while its error names a lock.
# APT_WAIT: seconds to wait for the locks in all (default 600). Exit status: 0 installed, 1 apt-get failed, 2 no root.
set -u
wait_s=${APT_WAIT:-600}
if [ "$(id -u)" = 0 ]; then sudo=(); elif sudo -n true 2>/dev/null; then sudo=(sudo -n); else
  echo "apt_install.sh: needs root or passwordless sudo to install $*" >&2; exit 2; fi
deadline=$((SECONDS + wait_s)); said=
until err=$("${sudo[@]}" apt-get -o DPkg::Lock::Timeout="$wait_s" update -qq 2>&1 >/dev/null); do
  if grep -q 'Could not get lock' <<<"$err" && [ "$SECONDS" -lt "$deadline" ]; then
    [ -n "$said" ] || echo "apt-get update: another apt-get holds the package lists' lock; waiting for it (up to ${wait_s} s)"
    said=1; sleep 5
  else echo "$err" >&2; exit 1; fi
done
left=$((deadline - SECONDS)); [ "$left" -gt 0 ] || left=1
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$left" install -y -qq "$@" >/dev/null
