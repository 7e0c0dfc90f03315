// packetfilter loader on cilium/ebpf: the library-specific part only (load with bpf2go's
// generated objects, size the maps, attach, ring buffer). CLI, config, output and signals are
// the shared Rust lifecycle's, which calls these functions (src/glue.rs).
package main

import "C"

import (
	"fmt"

	"bpfeval/cilium-ebpf/common"
	"github.com/cilium/ebpf/rlimit"
)

var objs packetfilterObjects

func load(capacity uint32) (err error) {
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK: cilium/ebpf's examples lift it
	// first (a no-op where memory is accounted by cgroup).
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("lifting RLIMIT_MEMLOCK: %w", err)
	}
	spec, err := loadPacketfilter()
	if err != nil {
		return fmt.Errorf("reading the BPF object: %w", err)
	}
	for _, name := range []string{"rules_v4", "rules_v6", "rule_hits"} {
		spec.Maps[name].MaxEntries = 2 * capacity
	}
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		return fmt.Errorf("loading the BPF object (verifier): %w", err)
	}
	common.Loaded, err = common.NewState(&objs, &objs.packetfilterMaps).WithEvents(objs.Events)
	return err
}

//export packetfilter_load
func packetfilter_load(capacity C.uint) *C.char { return (*C.char)(common.Err(load(uint32(capacity)))) }

//export packetfilter_attach
func packetfilter_attach(ifindex C.int, skb C.int) *C.char {
	return (*C.char)(common.Err(common.AttachXDP(objs.Packetfilter, int(ifindex), skb != 0)))
}

func main() {}
