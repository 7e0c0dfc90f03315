#!/usr/bin/env bash
# Runs after the reboot: fails the provisioning if the BPF LSM is not active.
set -euo pipefail
lsms=$(cat /sys/kernel/security/lsm 2>/dev/null || echo "unreadable (securityfs not mounted?)")
if [[ ",$lsms," != *,bpf,* ]]; then
  echo "BPF LSM not active: /sys/kernel/security/lsm is '$lsms'; kernel command line: $(cat /proc/cmdline)" >&2
  exit 1
fi
echo "active LSMs: $lsms"
