//! The kernel struct field offsets the Aya program needs, read from the running kernel's BTF.
//! libbpf does this for C programs (CO-RE relocations); a Rust BPF program has no relocations
//! and aya does not expose its BTF type graph, so the loader walks `/sys/kernel/btf/vmlinux`
//! itself (only what structs and their members need) and hands the offsets over as a global.

use anyhow::{bail, ensure, Context, Result};
use lsmbpf_aya_types::Offsets;

const BTF_KIND_STRUCT: u32 = 4;
const BTF_KIND_UNION: u32 = 5;

struct Type {
    name: u32,
    kind: u32,
    kind_flag: bool,
    size: u32,
    vlen: usize,
    /// Where its members start in the BTF data (struct/union: `vlen` × name, type id, offset).
    members: usize,
}

/// An index over the BTF data, which it borrows: members are read from the data when asked for.
struct Btf<'a> {
    data: &'a [u8],
    types: Vec<Type>,
    strings: &'a [u8],
}

fn u32_at(data: &[u8], o: usize) -> Result<u32> {
    Ok(u32::from_le_bytes(data.get(o..o + 4).context("BTF truncated")?.try_into().unwrap()))
}

impl<'a> Btf<'a> {
    fn parse(data: &'a [u8]) -> Result<Btf<'a>> {
        let u32_at = |o: usize| u32_at(data, o);
        ensure!(data.len() >= 24 && data[0..2] == [0x9f, 0xeb], "not little-endian BTF");
        let hdr_len = u32_at(4)? as usize;
        let (type_off, type_len) = (hdr_len + u32_at(8)? as usize, u32_at(12)? as usize);
        let (str_off, str_len) = (hdr_len + u32_at(16)? as usize, u32_at(20)? as usize);
        let strings = data.get(str_off..str_off + str_len).context("BTF strings truncated")?;
        // Type id 0 is `void`.
        let mut types = vec![Type { name: 0, kind: 0, kind_flag: false, size: 0, vlen: 0, members: 0 }];
        let mut o = type_off;
        while o < type_off + type_len {
            let (name, info, size) = (u32_at(o)?, u32_at(o + 4)?, u32_at(o + 8)?);
            let (vlen, kind, kind_flag) = ((info & 0xffff) as usize, (info >> 24) & 0x1f, info >> 31 == 1);
            o += 12;
            types.push(Type { name, kind, kind_flag, size, vlen, members: o });
            // Bytes that follow the common header, by kind (include/uapi/linux/btf.h).
            o += match kind {
                BTF_KIND_STRUCT | BTF_KIND_UNION => 12 * vlen,
                1 | 14 | 17 => 4,          // int, var, decl_tag
                3 => 12,                   // array
                6 => 8 * vlen,             // enum
                13 => 8 * vlen,            // func_proto
                15 | 19 => 12 * vlen,      // datasec, enum64
                2 | 7..=12 | 16 | 18 => 0, // ptr, fwd, typedef, volatile, const, restrict, func, float, type_tag
                k => bail!("unknown BTF kind {k}"),
            };
        }
        Ok(Btf { data, types, strings })
    }

    fn name(&self, off: u32) -> &[u8] {
        let s = &self.strings[off as usize..];
        &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())]
    }

    fn strukt(&self, name: &str) -> Result<&Type> {
        self.types
            .iter()
            .find(|t| t.kind == BTF_KIND_STRUCT && self.name(t.name) == name.as_bytes())
            .with_context(|| format!("no struct {name} in the kernel BTF"))
    }

    /// Byte offset of `member` in `ty`, looking into anonymous struct/union members too.
    fn member_in(&self, ty: &Type, member: &str) -> Option<u32> {
        for m in 0..ty.vlen {
            let p = ty.members + 12 * m;
            let (name, type_id, offset) =
                (u32_at(self.data, p).ok()?, u32_at(self.data, p + 4).ok()?, u32_at(self.data, p + 8).ok()?);
            // With kind_flag the low 24 bits are the bit offset, the high 8 a bitfield size.
            let bits = if ty.kind_flag { offset & 0xff_ffff } else { offset };
            if self.name(name) == member.as_bytes() {
                return Some(bits / 8);
            }
            if name == 0 {
                let inner = self.types.get(type_id as usize)?;
                if let Some(o) = self.member_in(inner, member) {
                    return Some(bits / 8 + o);
                }
            }
        }
        None
    }

    fn offset(&self, strukt: &str, member: &str) -> Result<u32> {
        self.member_in(self.strukt(strukt)?, member)
            .with_context(|| format!("no member {strukt}.{member} in the kernel BTF"))
    }
}

/// The offsets, from the raw BTF of the running kernel (`/sys/kernel/btf/vmlinux`).
pub fn from_btf(data: &[u8]) -> Result<Offsets> {
    let btf = Btf::parse(data).context("parsing the kernel BTF")?;
    Ok(Offsets {
        task_fs: btf.offset("task_struct", "fs")?,
        task_nsproxy: btf.offset("task_struct", "nsproxy")?,
        task_thread_pid: btf.offset("task_struct", "thread_pid")?,
        fs_root: btf.offset("fs_struct", "root")?,
        path_mnt: btf.offset("path", "mnt")?,
        path_dentry: btf.offset("path", "dentry")?,
        dentry_name: btf.offset("dentry", "d_name")?,
        qstr_name: btf.offset("qstr", "name")?,
        nsproxy_mnt_ns: btf.offset("nsproxy", "mnt_ns")?,
        mnt_namespace_ns: btf.offset("mnt_namespace", "ns")?,
        ns_common_inum: btf.offset("ns_common", "inum")?,
        pid_level: btf.offset("pid", "level")?,
        pid_numbers: btf.offset("pid", "numbers")?,
        upid_ns: btf.offset("upid", "ns")?,
        upid_size: btf.strukt("upid")?.size,
        pid_namespace_ns: btf.offset("pid_namespace", "ns")?,
    })
}

#[cfg(test)]
mod tests {
    /// The host kernel's BTF parses and has every member (layouts differ between kernels, which
    /// is the point of reading them at load time; the guest test runs the program for real).
    #[test]
    fn host_kernel_has_every_member() {
        let off = super::from_btf(&std::fs::read(super::super::KERNEL_BTF).unwrap()).unwrap();
        assert_eq!((off.path_mnt, off.path_dentry), (0, 8), "struct path is {{ mnt, dentry }}");
        assert_eq!(off.upid_size, 16);
        assert!(off.task_fs > 0 && off.task_nsproxy > 0 && off.task_thread_pid > 0);
    }
}
