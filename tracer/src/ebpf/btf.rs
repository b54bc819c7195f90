//! Just enough of the kernel's BTF (`/sys/kernel/btf/vmlinux`) to find where a
//! member sits in a kernel struct, so programs can read it on any kernel build.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("cannot read kernel BTF {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("kernel BTF is malformed: {0}")]
    Malformed(&'static str),
    #[error("kernel BTF has no member `{member}` in struct {strukt}")]
    NoMember { strukt: String, member: String },
}

pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

const MAGIC: u16 = 0xeb9f;
const KIND_STRUCT: u32 = 4;

/// Byte offset of `member` in `struct strukt` according to the running kernel.
pub fn member_offset(strukt: &str, member: &str) -> Result<u32, BtfError> {
    let data = std::fs::read(Path::new(VMLINUX)).map_err(|source| BtfError::Read {
        path: VMLINUX.into(),
        source,
    })?;
    member_offset_in(&data, strukt, member)
}

/// As [`member_offset`], for a BTF blob in memory (little-endian).
pub fn member_offset_in(data: &[u8], strukt: &str, member: &str) -> Result<u32, BtfError> {
    let u16_at = |o: usize| data.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        data.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let bad = BtfError::Malformed;
    if u16_at(0) != Some(MAGIC) {
        return Err(bad("bad magic (not little-endian BTF?)"));
    }
    let hdr_len = u32_at(4).ok_or(bad("short header"))? as usize;
    let type_off = u32_at(8).ok_or(bad("short header"))? as usize;
    let type_len = u32_at(12).ok_or(bad("short header"))? as usize;
    let str_off = u32_at(16).ok_or(bad("short header"))? as usize;
    let str_len = u32_at(20).ok_or(bad("short header"))? as usize;
    let types = hdr_len + type_off;
    let strings = hdr_len + str_off;
    let name = |off: u32| -> Option<&[u8]> {
        let start = strings + off as usize;
        let end = strings + str_len;
        let s = data.get(start..end)?;
        Some(&s[..s.iter().position(|&b| b == 0)?])
    };

    let mut pos = types;
    while pos < types + type_len {
        let name_off = u32_at(pos).ok_or(bad("truncated type"))?;
        let info = u32_at(pos + 4).ok_or(bad("truncated type"))?;
        let vlen = (info & 0xffff) as usize;
        let kind = (info >> 24) & 0x1f;
        let kflag = info >> 31 == 1;
        pos += 12;
        let extra = match kind {
            1 | 14 | 17 => 4,             // int, var, decl_tag
            3 => 12,                      // array
            4 | 5 | 15 | 19 => vlen * 12, // struct, union, datasec, enum64
            6 | 13 => vlen * 8,           // enum, func_proto
            2 | 7..=12 | 16 | 18 => 0,    // ptr, fwd, typedef, qualifiers, func, float, type_tag
            _ => return Err(bad("unknown type kind")),
        };
        if kind == KIND_STRUCT && name(name_off) == Some(strukt.as_bytes()) {
            for m in 0..vlen {
                let at = pos + m * 12;
                let m_name = u32_at(at).ok_or(bad("truncated member"))?;
                let m_off = u32_at(at + 8).ok_or(bad("truncated member"))?;
                if name(m_name) == Some(member.as_bytes()) {
                    let bits = if kflag { m_off & 0x00ff_ffff } else { m_off };
                    return Ok(bits / 8);
                }
            }
        }
        pos += extra;
    }
    Err(BtfError::NoMember {
        strukt: strukt.into(),
        member: member.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob with `int` and `struct pair { int a; int b; }`.
    fn blob() -> Vec<u8> {
        let strings = b"\0int\0pair\0a\0b\0";
        let mut types = Vec::new();
        let mut push = |v: u32| types.extend_from_slice(&v.to_le_bytes());
        // [1] int: name "int", kind 1, size 4, encoding word
        push(1);
        push(1 << 24);
        push(4);
        push(32);
        // [2] struct pair, 2 members, size 8
        push(5);
        push((4 << 24) | 2);
        push(8);
        push(10); // "a"
        push(1);
        push(0);
        push(12); // "b"
        push(1);
        push(32); // bit offset
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.extend_from_slice(&[1, 0]);
        for v in [
            24u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&types);
        out.extend_from_slice(strings);
        out
    }

    #[test]
    fn finds_member_offsets() {
        assert_eq!(member_offset_in(&blob(), "pair", "a").unwrap(), 0);
        assert_eq!(member_offset_in(&blob(), "pair", "b").unwrap(), 4);
        assert!(matches!(
            member_offset_in(&blob(), "pair", "c"),
            Err(BtfError::NoMember { .. })
        ));
        assert!(member_offset_in(&[0; 8], "pair", "a").is_err());
    }
}
