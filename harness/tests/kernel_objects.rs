//! Every implementation's kernel objects, disassembled: no program may call an out-of-line
//! memset/memcpy/memmove/memcmp. The BPF backend calls such a routine as a byte-wise loop, a cost
//! of how our code was written, not of the library (the C compiler expands the same copies
//! inline). Needs the built objects (`make build`); missing ones fail the test.

use harness::objects;
use harness::process::workspace_dir;

#[test]
fn no_out_of_line_memory_routines() {
    let objects = objects::all(&workspace_dir()).unwrap_or_else(|e| panic!("{e:#}"));
    let mut failures = Vec::new();
    for object in &objects {
        let text = objects::disassemble(&object.path).unwrap_or_else(|e| panic!("{e:#}"));
        for found in objects::mem_routine_uses(&text) {
            failures.push(format!("{}-{} {}: {found}", object.usecase, object.lib, object.path.display()));
        }
    }
    assert!(failures.is_empty(), "out-of-line memory routines in kernel objects:\n  {}", failures.join("\n  "));
    eprintln!("checked {} kernel objects", objects.len());
}
