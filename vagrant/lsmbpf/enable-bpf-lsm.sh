#!/usr/bin/env bash
# Adds the BPF LSM to the kernel command line, as the thesis did: Debian's kernel has
# CONFIG_BPF_LSM=y but does not list `bpf` in its default LSM order, and without it an LSM
# program loads and attaches without error and never runs. Takes effect at the next boot;
# the provisioner that runs this script reboots the guest (`reboot: true`).
set -euo pipefail

LSM="lsm=lockdown,capability,landlock,yama,apparmor,bpf"
# A drop-in rather than an edit of /etc/default/grub: Debian's grub-mkconfig reads
# /etc/default/grub.d/*.cfg after it, rewriting the file is idempotent, and removing it undoes it.
mkdir -p /etc/default/grub.d
# shellcheck disable=SC2016 # $GRUB_CMDLINE_LINUX is for grub-mkconfig to expand, not this script
printf 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX %s"\n' "$LSM" > /etc/default/grub.d/bpf-lsm.cfg
update-grub
