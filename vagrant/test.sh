#!/usr/bin/env bash
# Tests the Vagrant environments without booting a VM (boxes cannot be downloaded on CI):
#  1. every vagrant/*/Vagrantfile passes `vagrant validate`: with the provider plugins that are
#     installed and a usable provider, and with no plugins at all (`-p`: provider blocks are
#     skipped, so a host without vagrant-libvirt still loads every file);
#  2. Vagrant's own loader reads every Vagrantfile: Debian box, repository at /vagrant, a
#     machine provisioned by /vagrant/scripts/setup.sh (vagrant/inspect.rb);
#  3. that is the script CI runs: .ci/run -> make test -> make setup -> scripts/setup.sh.
# Needs the Debian package `vagrant` (it brings ruby and rsync, and recommends vagrant-libvirt).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

command -v vagrant >/dev/null || { echo "vagrant/test.sh: vagrant is not installed (apt-get install vagrant)" >&2; exit 1; }
# Keep Vagrant off the network (checkpoint and box update checks) and out of ~/.vagrant.d and
# the source tree.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_BOX_UPDATE_CHECK_DISABLE=1 \
  VAGRANT_HOME="$tmp/home" VAGRANT_DOTFILE_PATH="$tmp/dot"

passed=0 failed=0
check() { # description, command...
  local what=$1 out; shift
  if out=$("$@" 2>&1); then
    passed=$((passed + 1)); echo "ok   $what"
  else
    failed=$((failed + 1)); echo "FAIL $what"
    # shellcheck disable=SC2001 # indents every line
    sed 's/^/     /' <<<"$out"
  fi
}

dirs=(vagrant/*/)
[[ -f ${dirs[0]}Vagrantfile ]] || { echo "vagrant/test.sh: no vagrant/*/Vagrantfile" >&2; exit 1; }
# A full validation needs a provider that reports itself usable; the libvirt plugin does once
# installed (no daemon needed). Without one only the provider-independent part is checked.
if vagrant plugin list 2>/dev/null | grep -q '^vagrant-libvirt' || command -v VBoxManage >/dev/null; then
  full=1
else
  full=0; echo "skip vagrant validate with provider config: neither vagrant-libvirt nor VirtualBox is installed"
fi
for d in "${dirs[@]}"; do
  uc=$(basename "$d")
  [[ -f $d/Vagrantfile ]] || { check "$uc: has a Vagrantfile" false; continue; }
  ((full)) && check "$uc: vagrant validate" env VAGRANT_CWD="$d" vagrant validate
  check "$uc: vagrant validate -p, no plugins" env VAGRANT_CWD="$d" VAGRANT_NO_PLUGINS=1 vagrant validate -p
done
check "every environment provisions with scripts/setup.sh (vagrant/inspect.rb)" ruby vagrant/inspect.rb "$root" "${dirs[@]}"
for f in vagrant/*.sh vagrant/*/*.sh; do check "$f: bash -n" bash -n "$f"; done

# The CI path, read the way CI runs it: the command in .ci/run, and make's own view of the
# recipes `make test` runs (-n prints them without running them).
check ".ci/run runs make test" grep -Eq '^[[:space:]]*make test([[:space:]]|$)' .ci/run
# shellcheck disable=SC2016 # $1 is the inner shell's argument
check "make test runs scripts/setup.sh" bash -c 'make -n -C "$1" test | grep -qx scripts/setup.sh' _ "$root"
check "scripts/setup.sh is executable" test -x scripts/setup.sh

echo "$passed passed, $failed failed"
((failed == 0))
