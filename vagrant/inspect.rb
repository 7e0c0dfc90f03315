# Reads every given Vagrantfile through Vagrant's own configuration loader (no VM, no box) and
# checks what vagrant/test.sh promises: each machine is the Debian box with the repository at
# /vagrant, and in each environment a machine is provisioned by scripts/setup.sh from that
# synced repository (after rustup, which setup.sh expects). Usage: ruby inspect.rb ROOT DIR...
require "vagrant"

SETUP = "/vagrant/scripts/setup.sh"
BOX = "debian/bookworm64"
LSM = "lsm=lockdown,capability,landlock,yama,apparmor,bpf"

root = File.realpath(ARGV.shift)
failures = []
ARGV.each do |dir|
  usecase = File.basename(dir)
  env = Vagrant::Environment.new(cwd: dir)
  names = env.machine_names
  failures << "#{usecase}: no machine defined" if names.empty?
  provisioned = []
  names.each do |name|
    where = "#{usecase}/#{name}"
    config = env.vagrantfile.machine_config(name, nil, env.boxes, nil, false)[:config]
    failures << "#{where}: box is #{config.vm.box.inspect}, want #{BOX}" unless config.vm.box == BOX
    share = config.vm.synced_folders["/vagrant"]
    host = share && File.expand_path(share[:hostpath], dir)
    unless share && !share[:disabled] && File.realpath(host) == root
      failures << "#{where}: /vagrant is #{share.inspect}, want the repository root #{root}"
    end
    # `vagrant validate` checks only the usable provider's block; check both blocks here.
    providers = [:virtualbox] + (Vagrant.has_plugin?("vagrant-libvirt") ? [:libvirt] : [])
    providers.each do |provider|
      pc = config.vm.get_provider_config(provider)
      # Misspelt settings are recorded, not raised, by Vagrant's config objects.
      errors = pc._detected_errors
      failures << "#{where}: #{provider} settings: #{errors.join('; ')}" unless errors.empty?
    end
    provs = config.vm.provisioners
    shell = ->(p) { p.type.to_s == "shell" }
    runs = ->(p, what) { shell.(p) && (p.config.inline.to_s.include?(what) || p.config.path.to_s.include?(what)) }
    setup_at = provs.index { |p| runs.(p, SETUP) }
    rustup_at = provs.index { |p| runs.(p, "rustup.sh") }
    if setup_at
      provisioned << name
      failures << "#{where}: rustup.sh must run before #{SETUP}" unless rustup_at && rustup_at < setup_at
    end
    if usecase == "lsmbpf"
      reboot_at = provs.index { |p| shell.(p) && p.config.reboot && p.config.path && File.read(p.config.path).include?(LSM) }
      check_at = provs.index { |p| runs.(p, "check-bpf-lsm.sh") }
      failures << "#{where}: no provisioner sets #{LSM} and reboots" unless reboot_at
      failures << "#{where}: the BPF LSM check must run after the reboot" unless reboot_at && check_at && check_at > reboot_at
    end
    puts "#{where}: #{config.vm.box}, /vagrant <- #{host} (#{share && share[:type]}), " \
         "provisioners: #{provs.map { |p| p.name || p.type }.join(', ')}"
  end
  failures << "#{usecase}: no machine is provisioned by #{SETUP}" if provisioned.empty?
end
failures.each { |f| warn "FAIL #{f}" }
exit(failures.empty? ? 0 : 1)
