// Package common holds what every cilium/ebpf loader of bpf-eval does alike with the library:
// the loaded objects, per-CPU counters, the ring buffer. The loader of each use case fills a
// State; glue.go hands it to the shared Rust lifecycle.
package common

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
)

// State is the one loaded object of a loader process.
type State struct {
	// Maps by their kernel names, as the contract (impls/README.md) names them.
	Maps map[string]*ebpf.Map
	// Events reads the `events` ring buffer, where the use case has one.
	Events *ringbuf.Reader
	// Closed in reverse order: the links (detach) first, then the reader, then the objects.
	closers []io.Closer
}

// Loaded is the process's State, set by the use case's load function.
var Loaded *State

// Own closes c when the state is closed, after everything owned later.
func (s *State) Own(c io.Closer) { s.closers = append(s.closers, c) }

// Close detaches and closes everything, newest first.
func (s *State) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i].Close())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// NewState holds the maps of a bpf2go objects struct (by their `ebpf:"name"` tags) and closes
// the objects last.
func NewState(objs io.Closer, maps any) *State {
	s := &State{Maps: map[string]*ebpf.Map{}}
	v := reflect.ValueOf(maps).Elem()
	for i := 0; i < v.NumField(); i++ {
		if m, ok := v.Field(i).Interface().(*ebpf.Map); ok {
			s.Maps[v.Type().Field(i).Tag.Get("ebpf")] = m
		}
	}
	s.Own(objs)
	return s
}

// WithEvents adds a reader of the `events` ring buffer, closed before the objects.
func (s *State) WithEvents(events *ebpf.Map) (*State, error) {
	rd, err := ringbuf.NewReader(events)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("opening the ring buffer: %w", err)
	}
	s.Events = rd
	s.Own(rd)
	return s, nil
}

// AttachXDP attaches prog to ifindex by a bpf_link in exactly the mode asked for (without a
// mode flag the kernel would silently fall back to generic XDP).
func AttachXDP(prog *ebpf.Program, ifindex int, skb bool) error {
	flags := link.XDPDriverMode
	if skb {
		flags = link.XDPGenericMode
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: flags})
	if err != nil {
		return err
	}
	Loaded.Own(l)
	return nil
}

// Map returns the map called name.
func (s *State) Map(name string) (*ebpf.Map, error) {
	if m, ok := s.Maps[name]; ok {
		return m, nil
	}
	return nil, fmt.Errorf("no map %q", name)
}

// PercpuSum is one per-CPU u64 counter summed over all possible CPUs.
func PercpuSum(m *ebpf.Map, index uint32) (uint64, error) {
	var values []uint64
	if err := m.Lookup(index, &values); err != nil {
		return 0, fmt.Errorf("looking up %s[%d]: %w", m, index, err)
	}
	var sum uint64
	for _, v := range values {
		sum += v
	}
	return sum, nil
}

// PercpuZero zeroes one per-CPU u64 counter on every possible CPU.
func PercpuZero(m *ebpf.Map, index uint32) error {
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return err
	}
	return m.Update(index, make([]uint64, cpus), ebpf.UpdateAny)
}

// Poll waits at most timeout for ring buffer records and hands each one to emit, then returns
// with what has arrived (like libbpf's ring_buffer__poll) instead of waiting out the timeout.
// ReadInto copies a record and releases it before it returns (the Reader has no in-place read),
// so a record is released before emit runs, unlike the other libraries' readers (see
// bpfeval_shared's PollSink: it costs the program more reader wake-ups).
func Poll(rd *ringbuf.Reader, timeout time.Duration, emit func([]byte)) error {
	var rec ringbuf.Record
	rd.SetDeadline(time.Now().Add(timeout))
	for {
		err := rd.ReadInto(&rec)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the ring buffer: %w", err)
		}
		emit(rec.RawSample)
		// Records already in the ring only: a deadline in the past drains without waiting.
		rd.SetDeadline(time.Now())
	}
}
