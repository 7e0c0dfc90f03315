// loadbalancer loader on cilium/ebpf: the library-specific part only (load with bpf2go's
// generated objects, attach, ring buffer). CLI, config, Maglev table, output and signals are
// the shared Rust lifecycle's, which calls these functions (src/glue.rs).
package main

import "C"

import (
	"fmt"

	"bpfeval/cilium-ebpf/common"
	"github.com/cilium/ebpf/rlimit"
)

var objs loadbalancerObjects

func load() (err error) {
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK: cilium/ebpf's examples lift it
	// first (a no-op where memory is accounted by cgroup).
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("lifting RLIMIT_MEMLOCK: %w", err)
	}
	if err := loadLoadbalancerObjects(&objs, nil); err != nil {
		return fmt.Errorf("loading the BPF object (verifier): %w", err)
	}
	common.Loaded, err = common.NewState(&objs, &objs.loadbalancerMaps).WithEvents(objs.Events)
	return err
}

//export loadbalancer_load
func loadbalancer_load() *C.char { return (*C.char)(common.Err(load())) }

//export loadbalancer_attach
func loadbalancer_attach(ifindex C.int, skb C.int) *C.char {
	return (*C.char)(common.Err(common.AttachXDP(objs.Loadbalancer, int(ifindex), skb != 0)))
}

func main() {}
