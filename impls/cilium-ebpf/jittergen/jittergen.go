// jittergen loader on cilium/ebpf: the library-specific part only (load with bpf2go's
// generated objects, attach by TCX or netlink). CLI, config, qdiscs, output and signals are
// the shared Rust lifecycle's, which calls these functions (src/glue.rs).
package main

import "C"

import (
	"errors"
	"fmt"

	"bpfeval/cilium-ebpf/common"
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

var objs jittergenObjects

func load() (err error) {
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK: cilium/ebpf's examples lift it
	// first (a no-op where memory is accounted by cgroup).
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("lifting RLIMIT_MEMLOCK: %w", err)
	}
	if err := loadJittergenObjects(&objs, nil); err != nil {
		return fmt.Errorf("loading the BPF object (verifier): %w", err)
	}
	common.Loaded = common.NewState(&objs, &objs.jittergenMaps)
	return nil
}

func attachTCX(ifindex int) error {
	l, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: objs.Jittergen, Attach: ebpf.AttachTCXEgress})
	if err != nil {
		return fmt.Errorf("attaching by TCX: %w", err)
	}
	common.Loaded.Own(l)
	return nil
}

// filter is a netlink cls_bpf filter; closing it deletes it (it is no bpf_link).
type filter struct{ *netlink.BpfFilter }

func (f filter) Close() error { return netlink.FilterDel(f.BpfFilter) }

// cilium/ebpf has no netlink TC attach (kernels without TCX): vishvananda/netlink does it.
func attachNetlink(ifindex int) error {
	clsact := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	// One that is there already is fine.
	if err := netlink.QdiscAdd(clsact); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("adding the clsact qdisc: %w", err)
	}
	f := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: ifindex, Parent: netlink.HANDLE_MIN_EGRESS, Handle: 1, Priority: 1, Protocol: unix.ETH_P_ALL,
		},
		Fd: objs.Jittergen.FD(), Name: "jittergen", DirectAction: true,
	}
	if err := netlink.FilterAdd(f); err != nil {
		return fmt.Errorf("attaching the cls_bpf filter: %w", err)
	}
	common.Loaded.Own(filter{f})
	return nil
}

//export jittergen_load
func jittergen_load() *C.char { return (*C.char)(common.Err(load())) }

//export jittergen_attach
func jittergen_attach(ifindex C.int, tcx C.int) *C.char {
	if tcx != 0 {
		return (*C.char)(common.Err(attachTCX(int(ifindex))))
	}
	return (*C.char)(common.Err(attachNetlink(int(ifindex))))
}

func main() {}
