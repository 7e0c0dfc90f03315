#!/usr/bin/env python3
"""How often the verifier walked each instruction of a BPF program: loads one program section of
an object with legacy `maps` definitions (Aya's bpf-linker output) through raw bpf(2) calls with
the verbose verifier log, and prints the log's summary line and the visit count of every
instruction, as ranges of equal count ("168-384 x8"). Maps are created from their bpf_map_def
and destroyed on exit (closed fds); the program is not attached. For libbpf objects (BTF maps)
`bpftool -d prog load OBJ /sys/fs/bpf/NAME type xdp` prints the same log (remove the pin after).

    scripts/verifier-visits.py OBJECT SECTION [PROG_TYPE]   (PROG_TYPE 6 = XDP, the default)
"""
import ctypes
import os
import re
import struct
import sys
from collections import Counter

libc = ctypes.CDLL(None, use_errno=True)
SYS_BPF, BPF_MAP_CREATE, BPF_PROG_LOAD = 321, 0, 5
LOG_BYTES = 1 << 26


def bpf(cmd, attr, keep):
    buf = ctypes.create_string_buffer(attr, 256)
    fd = libc.syscall(SYS_BPF, cmd, buf, len(attr))
    if fd < 0 and keep:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return fd


def main(path, section, prog_type):
    elf = open(path, 'rb').read()
    shoff, = struct.unpack_from('<Q', elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from('<HHH', elf, 0x3a)
    secs = [struct.unpack_from('<IIQQQQIIQQ', elf, shoff + i * shentsize) for i in range(shnum)]
    cstr = lambda off: elf[off:elf.index(b'\0', off)].decode()
    names = [cstr(secs[shstrndx][4] + s[0]) for s in secs]
    symtab = secs[names.index('.symtab')]
    strtab_off = secs[symtab[6]][4]
    syms = [struct.unpack_from('<IBBHQQ', elf, symtab[4] + 24 * i) for i in range(symtab[5] // 24)]
    maps = {i for i, n in enumerate(names) if n == 'maps' or n.startswith('maps/')}
    prog_index = names.index(section)
    insns = bytearray(elf[secs[prog_index][4]:secs[prog_index][4] + secs[prog_index][5]])
    fds = {}
    for i, s in enumerate(secs):
        if s[1] != 9 or s[7] != prog_index:  # SHT_REL for the program's section
            continue
        for off, info in (struct.unpack_from('<QQ', elf, s[4] + 16 * r) for r in range(s[5] // 16)):
            name, _, _, shndx, value, _ = syms[info >> 32]
            if insns[off] != 0x18 or shndx not in maps:
                sys.exit(f"{path}: relocation at insn {off // 8} to {cstr(strtab_off + name)}: only map loads are handled")
            if (shndx, value) not in fds:
                fds[shndx, value] = bpf(BPF_MAP_CREATE, elf[secs[shndx][4] + value:secs[shndx][4] + value + 20], True)
            insns[off + 1] = (insns[off + 1] & 0x0f) | 0x10  # src_reg = BPF_PSEUDO_MAP_FD
            struct.pack_into('<i', insns, off + 4, fds[shndx, value])
    code, license, log = ctypes.create_string_buffer(bytes(insns)), ctypes.create_string_buffer(b'GPL'), ctypes.create_string_buffer(LOG_BYTES)
    attr = struct.pack('<IIQQIIQ', prog_type, len(insns) // 8, ctypes.addressof(code), ctypes.addressof(license), 3, LOG_BYTES, ctypes.addressof(log))
    fd = bpf(BPF_PROG_LOAD, attr, False)
    text = log.value.decode(errors='replace')
    if fd < 0:
        sys.exit(f"{path}: the verifier rejected {section}:\n{text[-4000:]}")
    visits = Counter(int(m) for m in re.findall(r'^(\d+): \([0-9a-f]{2}\)', text, re.M))
    print(text.strip().splitlines()[-1])
    ranges, start, prev = [], None, None
    for insn in sorted(visits):
        if start is not None and insn <= prev + 2 and visits[insn] == visits[start]:
            prev = insn
            continue
        if start is not None:
            ranges.append(f"{start}-{prev} x{visits[start]}")
        start = prev = insn
    if start is not None:
        ranges.append(f"{start}-{prev} x{visits[start]}")
    print("\n".join(ranges))


if __name__ == '__main__':
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) == 4 else 6)
