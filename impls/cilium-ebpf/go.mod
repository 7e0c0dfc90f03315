// The Go side of every cilium/ebpf loader. Offline and from Debian only: the modules are the
// packages of ./debs.lock, unpacked by ./setup.sh (build-support passes GOPROXY=off,
// GOFLAGS=-mod=mod, GOTOOLCHAIN=local); their versions here are Debian's upstream versions.
module bpfeval/cilium-ebpf

go 1.26.0

require (
	github.com/cilium/ebpf v0.22.0
	github.com/vishvananda/netlink v1.3.0
	golang.org/x/sys v0.49.0
)

require github.com/vishvananda/netns v0.0.5 // indirect

replace (
	github.com/cilium/ebpf => ../../target/cilium-ebpf/root/usr/share/gocode/src/github.com/cilium/ebpf
	github.com/vishvananda/netlink => ../../target/cilium-ebpf/root/usr/share/gocode/src/github.com/vishvananda/netlink
	github.com/vishvananda/netns => ../../target/cilium-ebpf/root/usr/share/gocode/src/github.com/vishvananda/netns
	golang.org/x/sys => ../../target/cilium-ebpf/root/usr/share/gocode/src/golang.org/x/sys
)
