// comtrace loader on cilium/ebpf: the library-specific part only (set the read-only globals,
// load with bpf2go's generated objects, attach the tracepoint, ring buffer). CLI, output and
// signals are the shared Rust lifecycle's, which calls these functions (src/glue.rs).
package main

import "C"

import (
	"fmt"

	"bpfeval/cilium-ebpf/common"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

var objs comtraceObjects

func load(targetPID uint32, filterLports, filterRports bool) (err error) {
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK: cilium/ebpf's examples lift it
	// first (a no-op where memory is accounted by cgroup).
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("lifting RLIMIT_MEMLOCK: %w", err)
	}
	spec, err := loadComtrace()
	if err != nil {
		return fmt.Errorf("reading the BPF object: %w", err)
	}
	// `const volatile` globals: written into .rodata before load, constants for the verifier.
	for name, value := range map[string]any{"target_pid": targetPID, "filter_lports": b2u8(filterLports), "filter_rports": b2u8(filterRports)} {
		if err := spec.Variables[name].Set(value); err != nil {
			return err
		}
	}
	// CO-RE: cilium/ebpf relocates the field accesses against /sys/kernel/btf/vmlinux here.
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		return fmt.Errorf("loading the BPF object (verifier): %w", err)
	}
	common.Loaded, err = common.NewState(&objs, &objs.comtraceMaps).WithEvents(objs.Events)
	return err
}

func b2u8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func attach() error {
	l, err := link.Tracepoint("sock", "inet_sock_set_state", objs.Comtrace, nil)
	if err != nil {
		return err
	}
	common.Loaded.Own(l)
	return nil
}

//export comtrace_load
func comtrace_load(targetPID C.uint, filterLports, filterRports C.int) *C.char {
	return (*C.char)(common.Err(load(uint32(targetPID), filterLports != 0, filterRports != 0)))
}

//export comtrace_attach
func comtrace_attach() *C.char { return (*C.char)(common.Err(attach())) }

func main() {}
