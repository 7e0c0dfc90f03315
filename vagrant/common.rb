# Shared by every vagrant/<usecase>/Vagrantfile: one place for the box, the VM sizes, the
# synced repository and the provisioning, so the Vagrantfiles only say what differs.
#
# A development machine is a Debian 12 (bookworm) VM provisioned by the same
# scripts/setup.sh that CI runs (.ci/run -> make test -> make setup), with the repository at
# /vagrant: `vagrant up && vagrant ssh`, then `cd /vagrant && make build`.
module BpfEval
  ROOT = File.expand_path("..", __dir__)
  BOX = "debian/bookworm64"
  SETUP = "/vagrant/scripts/setup.sh"
  # rustup.sh installs Rust here, for root (the provisioners) and the vagrant user alike.
  RUST_ENV = "/etc/profile.d/rust.sh"

  # Sizes can be changed per run without editing files (a Rust workspace build wants ~4 GiB).
  MEMORY = Integer(ENV.fetch("BPFEVAL_VM_MEMORY", "4096"))
  CPUS = Integer(ENV.fetch("BPFEVAL_VM_CPUS", "2"))
  # rsync by default: it works with both providers and with the Debian box, which ships no
  # VirtualBox guest additions, and it survives guest reboots (lsmbpf reboots once). It copies
  # host -> guest at `vagrant up`/`reload`/`rsync`; `vagrant rsync-auto` keeps it in sync.
  # BPFEVAL_SYNC=virtualbox|nfs|9p|virtiofs picks a live share where the host supports one.
  SYNC = ENV.fetch("BPFEVAL_SYNC", "rsync")

  # Box, size, hostname and the repository at /vagrant; no provisioning.
  def self.machine(config, hostname:, memory: MEMORY, cpus: CPUS)
    config.vm.box = BOX
    config.vm.hostname = hostname
    # Replaces Vagrant's default share of the Vagrantfile's own directory at /vagrant.
    config.vm.synced_folder ROOT, "/vagrant", type: SYNC,
      rsync__exclude: ["target/", "impls/redbpf/target/", "impls/redbpf/vendor/", "reports/"]
    config.vm.provider "virtualbox" do |vb|
      vb.memory = memory
      vb.cpus = cpus
    end
    # Guarded so the Vagrantfiles load (and `vagrant validate -p` passes) without the plugin.
    if Vagrant.has_plugin?("vagrant-libvirt")
      config.vm.provider "libvirt" do |lv|
        lv.memory = memory
        lv.cpus = cpus
      end
    end
  end

  # A machine that builds, tests and runs the implementations.
  def self.dev_vm(config, hostname: "bpf-eval", **size)
    machine(config, hostname: hostname, **size)
    # setup.sh expects rustup, which the project's machines ship and Debian 12 does not.
    config.vm.provision "rustup", type: "shell", path: File.join(__dir__, "rustup.sh")
    # Run from the synced tree, not uploaded by `path:`: setup.sh works relative to its own
    # location in the repository (impls/aya/nightly-toolchain, rust-toolchain.toml).
    config.vm.provision "setup", type: "shell", inline: ". #{RUST_ENV} && #{SETUP}"
    # setup.sh installed toolchains and bpf-linker as root; `make build` as the vagrant user
    # writes to the same cargo registry and rustup directories.
    config.vm.provision "share-rust", type: "shell",
      inline: ". #{RUST_ENV} && chmod -R a+w \"$RUSTUP_HOME\" \"$CARGO_HOME\""
  end
end
