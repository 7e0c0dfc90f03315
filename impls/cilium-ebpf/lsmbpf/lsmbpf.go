// lsmbpf loader on cilium/ebpf: the library-specific part only (set the read-only settings,
// load with bpf2go's generated objects, attach the LSM program, ring buffer). CLI, config,
// output and signals are the shared Rust lifecycle's, which calls these functions (src/glue.rs).
package main

// #include <stdint.h>
import "C"

import (
	"fmt"

	"bpfeval/cilium-ebpf/common"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

var objs lsmbpfObjects

func load(settings lsmbpfSettings) (err error) {
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK: cilium/ebpf's examples lift it
	// first (a no-op where memory is accounted by cgroup).
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("lifting RLIMIT_MEMLOCK: %w", err)
	}
	spec, err := loadLsmbpf()
	if err != nil {
		return fmt.Errorf("reading the BPF object: %w", err)
	}
	// A `const volatile` global in .rodata: written here, frozen by the load.
	if err := spec.Variables["settings"].Set(settings); err != nil {
		return err
	}
	// CO-RE: cilium/ebpf relocates the field accesses against /sys/kernel/btf/vmlinux here.
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		return fmt.Errorf("loading the BPF object (verifier): %w", err)
	}
	common.Loaded, err = common.NewState(&objs, &objs.lsmbpfMaps).WithEvents(objs.Events)
	return err
}

func attach() error {
	l, err := link.AttachLSM(link.LSMOptions{Program: objs.Lsmbpf})
	if err != nil {
		return err
	}
	common.Loaded.Own(l)
	return nil
}

//export lsmbpf_load
func lsmbpf_load(pidnsDev, pidnsIno C.uint64_t, mntnsIno, criterion, mode C.uint) *C.char {
	settings := lsmbpfSettings{PidnsDev: uint64(pidnsDev), PidnsIno: uint64(pidnsIno), MntnsIno: uint32(mntnsIno), Criterion: uint32(criterion), Mode: uint32(mode)}
	return (*C.char)(common.Err(load(settings)))
}

//export lsmbpf_attach
func lsmbpf_attach() *C.char { return (*C.char)(common.Err(attach())) }

func main() {}
