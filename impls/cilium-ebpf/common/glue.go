package common

// The C ABI through which the shared Rust lifecycle (impls/shared) drives a cilium/ebpf loader:
// tool glue, not the library's cost. Errors come back as C strings the caller frees (NULL: ok).

// #include <stdint.h>
// #include <stdlib.h>
// #include "sink.h"
import "C"

import (
	"errors"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
)

// Err is nil for nil, else the error's text in C memory (a *C.char of the caller's package).
func Err(err error) unsafe.Pointer {
	if err == nil {
		return nil
	}
	return unsafe.Pointer(C.CString(err.Error()))
}

func loaded() (*State, error) {
	if Loaded == nil {
		return nil, errors.New("nothing is loaded")
	}
	return Loaded, nil
}

func mapNamed(name *C.char) (*ebpf.Map, error) {
	s, err := loaded()
	if err != nil {
		return nil, err
	}
	return s.Map(C.GoString(name))
}

//export cebpf_map_update
func cebpf_map_update(name *C.char, key unsafe.Pointer, keyLen C.size_t, value unsafe.Pointer, valueLen C.size_t, flags C.uint64_t) *C.char {
	m, err := mapNamed(name)
	if err == nil {
		err = m.Update(C.GoBytes(key, C.int(keyLen)), C.GoBytes(value, C.int(valueLen)), ebpf.MapUpdateFlags(flags))
	}
	return (*C.char)(Err(err))
}

//export cebpf_map_delete
func cebpf_map_delete(name *C.char, key unsafe.Pointer, keyLen C.size_t) *C.char {
	m, err := mapNamed(name)
	if err == nil {
		err = m.Delete(C.GoBytes(key, C.int(keyLen)))
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			err = nil
		}
	}
	return (*C.char)(Err(err))
}

//export cebpf_percpu_sum
func cebpf_percpu_sum(name *C.char, index C.uint32_t, out *C.uint64_t) *C.char {
	m, err := mapNamed(name)
	if err == nil {
		var sum uint64
		sum, err = PercpuSum(m, uint32(index))
		*out = C.uint64_t(sum)
	}
	return (*C.char)(Err(err))
}

//export cebpf_percpu_zero
func cebpf_percpu_zero(name *C.char, index C.uint32_t) *C.char {
	m, err := mapNamed(name)
	if err == nil {
		err = PercpuZero(m, uint32(index))
	}
	return (*C.char)(Err(err))
}

//export cebpf_poll
func cebpf_poll(timeoutMs C.uint32_t, sink C.bpfeval_sink, ctx unsafe.Pointer) *C.char {
	s, err := loaded()
	if err == nil && s.Events == nil {
		err = errors.New("no ring buffer")
	}
	if err == nil {
		err = Poll(s.Events, time.Duration(timeoutMs)*time.Millisecond, func(record []byte) {
			C.bpfeval_call_sink(sink, ctx, unsafe.Pointer(unsafe.SliceData(record)), C.size_t(len(record)))
		})
	}
	return (*C.char)(Err(err))
}

//export cebpf_close
func cebpf_close() *C.char {
	s, err := loaded()
	if err == nil {
		err = s.Close()
		Loaded = nil
	}
	return (*C.char)(Err(err))
}
