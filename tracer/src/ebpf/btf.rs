//! Just enough of the kernel's BTF (`/sys/kernel/btf/vmlinux`) to find where a
//! member sits in a kernel struct, so programs can read it on any kernel build.
//!
//! Members of anonymous structs and unions count as members of the struct that
//! holds them, as in C: `sock_common.skc_dport` lives in an anonymous struct
//! inside an anonymous union, and is found by that name.

use std::path::Path;

use tracer_common::{AcceptOffsets, NetnsOffsets, SkbOffsets, SockOffsets, layout::ABSENT};

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
    #[error("`{strukt}.{member}` is a bit field in the kernel's BTF; tracer cannot read it")]
    BitField { strukt: String, member: String },
    #[error("`{strukt}.{member}` is at byte {offset}, beyond what tracer can address")]
    TooFar {
        strukt: String,
        member: String,
        offset: u32,
    },
}

pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

const MAGIC: u16 = 0xeb9f;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
/// Bounds the descent into anonymous members (the kernel nests two or three deep).
const MAX_NESTING: usize = 8;

/// One type record: where it starts and what its header says.
#[derive(Debug, Clone, Copy)]
struct TypeRecord {
    /// Byte position of the record's first member (just past the 12-byte header).
    members: usize,
    name_off: u32,
    kind: u32,
    vlen: usize,
    kflag: bool,
}

/// The kernel's BTF, parsed once; look up as many members as needed.
pub struct Btf {
    data: Vec<u8>,
    /// Type records by id; id 0 (void) has none, so `types[id - 1]`.
    types: Vec<TypeRecord>,
    strings: usize,
    strings_len: usize,
}

impl Btf {
    /// Reads and indexes `/sys/kernel/btf/vmlinux`.
    pub fn kernel() -> Result<Self, BtfError> {
        let data = std::fs::read(Path::new(VMLINUX)).map_err(|source| BtfError::Read {
            path: VMLINUX.into(),
            source,
        })?;
        Self::parse(data)
    }

    /// Indexes a BTF blob (little-endian).
    pub fn parse(data: Vec<u8>) -> Result<Self, BtfError> {
        let bad = BtfError::Malformed;
        if u16_at(&data, 0) != Some(MAGIC) {
            return Err(bad("bad magic (not little-endian BTF?)"));
        }
        let header = |o| {
            u32_at(&data, o)
                .ok_or(bad("short header"))
                .map(|v| v as usize)
        };
        let hdr_len = header(4)?;
        let type_off = header(8)?;
        let type_len = header(12)?;
        let str_off = header(16)?;
        let str_len = header(20)?;
        let start = hdr_len + type_off;
        let end = start + type_len;
        let mut types = Vec::new();
        let mut pos = start;
        while pos < end {
            let name_off = u32_at(&data, pos).ok_or(bad("truncated type"))?;
            let info = u32_at(&data, pos + 4).ok_or(bad("truncated type"))?;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let extra = match kind {
                1 | 14 | 17 => 4,             // int, var, decl_tag
                3 => 12,                      // array
                4 | 5 | 15 | 19 => vlen * 12, // struct, union, datasec, enum64
                6 | 13 => vlen * 8,           // enum, func_proto
                2 | 7..=12 | 16 | 18 => 0, // ptr, fwd, typedef, qualifiers, func, float, type_tag
                _ => return Err(bad("unknown type kind")),
            };
            types.push(TypeRecord {
                members: pos + 12,
                name_off,
                kind,
                vlen,
                kflag: info >> 31 == 1,
            });
            pos += 12 + extra;
        }
        Ok(Self {
            data,
            types,
            strings: hdr_len + str_off,
            strings_len: str_len,
        })
    }

    /// Byte offset of `member` in `struct strukt`, looking through anonymous
    /// structs and unions.
    pub fn member_offset(&self, strukt: &str, member: &str) -> Result<u32, BtfError> {
        let no_member = || BtfError::NoMember {
            strukt: strukt.into(),
            member: member.into(),
        };
        // The first struct of that name with members (a forward declaration has none).
        let record = self
            .types
            .iter()
            .find(|t| t.kind == KIND_STRUCT && t.vlen > 0 && self.name(t.name_off) == Some(strukt))
            .ok_or_else(no_member)?;
        match self.find(record, member, 0, 0)? {
            Some(Found::Bytes(offset)) => Ok(offset),
            Some(Found::BitField) => Err(BtfError::BitField {
                strukt: strukt.into(),
                member: member.into(),
            }),
            None => Err(no_member()),
        }
    }

    /// As [`Self::member_offset`], narrowed to the `u16` the programs take.
    pub fn member_offset_u16(&self, strukt: &str, member: &str) -> Result<u16, BtfError> {
        narrow(strukt, member, self.member_offset(strukt, member)?)
    }

    /// Searches `record`'s members (at byte `base`) for `member`.
    fn find(
        &self,
        record: &TypeRecord,
        member: &str,
        base: u32,
        depth: usize,
    ) -> Result<Option<Found>, BtfError> {
        let bad = BtfError::Malformed;
        for m in 0..record.vlen {
            let at = record.members + m * 12;
            let name_off = u32_at(&self.data, at).ok_or(bad("truncated member"))?;
            let type_id = u32_at(&self.data, at + 4).ok_or(bad("truncated member"))?;
            let raw = u32_at(&self.data, at + 8).ok_or(bad("truncated member"))?;
            // With kflag the top 8 bits hold a bit-field size, the rest the bit offset.
            let (bits, bitfield) = if record.kflag {
                (raw & 0x00ff_ffff, raw >> 24 != 0)
            } else {
                (raw, false)
            };
            if name_off == 0 {
                // An anonymous struct or union: its members belong to this struct.
                let inner = self.resolve(type_id)?;
                if depth < MAX_NESTING && matches!(inner.kind, KIND_STRUCT | KIND_UNION) {
                    let found = self.find(&inner, member, base + bits / 8, depth + 1)?;
                    if found.is_some() {
                        return Ok(found);
                    }
                }
                continue;
            }
            if self.name(name_off) == Some(member) {
                return Ok(Some(if bitfield || bits % 8 != 0 {
                    Found::BitField
                } else {
                    Found::Bytes(base + bits / 8)
                }));
            }
        }
        Ok(None)
    }

    fn resolve(&self, type_id: u32) -> Result<TypeRecord, BtfError> {
        type_id
            .checked_sub(1)
            .and_then(|i| self.types.get(i as usize))
            .copied()
            .ok_or(BtfError::Malformed("member refers to an unknown type"))
    }

    fn name(&self, off: u32) -> Option<&str> {
        let start = self.strings + off as usize;
        let end = self.strings + self.strings_len;
        let s = self.data.get(start..end)?;
        std::str::from_utf8(&s[..s.iter().position(|&b| b == 0)?]).ok()
    }
}

/// Where the kprobes find what they read in a `struct sock`.
pub fn sock_offsets(btf: &Btf) -> Result<SockOffsets, BtfError> {
    // `struct sock` starts with its `struct sock_common`; the tuple lives there.
    let common = btf.member_offset("sock", "__sk_common")?;
    let at = |member: &str| -> Result<u16, BtfError> {
        let offset = common + btf.member_offset("sock_common", member)?;
        narrow("sock_common", member, offset)
    };
    Ok(SockOffsets {
        state: at("skc_state")?,
        family: at("skc_family")?,
        protocol: btf.member_offset_u16("sock", "sk_protocol")?,
        sport: at("skc_num")?,
        dport: at("skc_dport")?,
        saddr: at("skc_rcv_saddr")?,
        daddr: at("skc_daddr")?,
        saddr_v6: at("skc_v6_rcv_saddr")?,
        daddr_v6: at("skc_v6_daddr")?,
        inet_sport: btf.member_offset_u16("inet_sock", "inet_sport")?,
    })
}

/// What the drop program reads of a `struct sk_buff`; `has_rx_sk` and
/// `no_socket` come from the tracepoint's format file.
pub fn skb_offsets(btf: &Btf, has_rx_sk: bool, no_socket: u16) -> Result<SkbOffsets, BtfError> {
    Ok(SkbOffsets {
        sk: btf.member_offset_u16("sk_buff", "sk")?,
        head: btf.member_offset_u16("sk_buff", "head")?,
        network_header: btf.member_offset_u16("sk_buff", "network_header")?,
        protocol: btf.member_offset_u16("sk_buff", "protocol")?,
        has_rx_sk: u16::from(has_rx_sk),
        no_socket,
        // Optional: without them a drop without a socket is looked up by
        // its addresses in namespace 0.
        dev: btf.member_offset_u16("sk_buff", "dev").unwrap_or(ABSENT),
        dev_net: btf
            .member_offset_u16("net_device", "nd_net")
            .unwrap_or(ABSENT),
    })
}

/// Where a socket's network namespace is: `sock_common.skc_net` (a
/// `possible_net_t`, which holds the `struct net *`) and `net.ns.inum`.
pub fn netns_offsets(btf: &Btf) -> Result<NetnsOffsets, BtfError> {
    let common = btf.member_offset("sock", "__sk_common")?;
    Ok(NetnsOffsets {
        // `possible_net_t` is an unnamed struct whose one member, the
        // pointer, is at its start.
        sk_net: common + btf.member_offset("sock_common", "skc_net")?,
        net_inum: btf.member_offset("net", "ns")? + btf.member_offset("ns_common", "inum")?,
    })
}

/// Where a listener's accept queue ends: `inet_connection_sock` (which
/// starts with `struct sock`) `.icsk_accept_queue.rskq_accept_tail`, and the
/// connection in a `request_sock`.
pub fn accept_offsets(btf: &Btf) -> Result<AcceptOffsets, BtfError> {
    Ok(AcceptOffsets {
        accept_tail: btf.member_offset("inet_connection_sock", "icsk_accept_queue")?
            + btf.member_offset("request_sock_queue", "rskq_accept_tail")?,
        req_sk: btf.member_offset("request_sock", "sk")?,
    })
}

fn narrow(strukt: &str, member: &str, offset: u32) -> Result<u16, BtfError> {
    u16::try_from(offset)
        .ok()
        .filter(|&o| o != ABSENT)
        .ok_or_else(|| BtfError::TooFar {
            strukt: strukt.into(),
            member: member.into(),
            offset,
        })
}

enum Found {
    Bytes(u32),
    BitField,
}

fn u16_at(data: &[u8], o: usize) -> Option<u16> {
    data.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]))
}

fn u32_at(data: &[u8], o: usize) -> Option<u32> {
    data.get(o..o + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob with
    /// `struct pair { int a; int b; union { int c; struct { int d; int e; }; }; int f:3; }`.
    fn blob() -> Vec<u8> {
        let strings = b"\0int\0pair\0a\0b\0c\0d\0e\0f\0";
        let (int, pair, a, b, c, d, e, f) = (1, 5, 10, 12, 14, 16, 18, 20);
        let mut types = Vec::new();
        let mut push = |v: u32| types.extend_from_slice(&v.to_le_bytes());
        // [1] int: name "int", kind 1, size 4, encoding word
        push(int);
        push(1 << 24);
        push(4);
        push(32);
        // [2] struct pair, 4 members, size 20, kflag (bit-field sizes in offsets)
        push(pair);
        push((1 << 31) | (4 << 24) | 4);
        push(20);
        push(a);
        push(1);
        push(0);
        push(b);
        push(1);
        push(32); // bit offset
        push(0); // anonymous
        push(3);
        push(64);
        push(f);
        push(1);
        push((3 << 24) | 128); // 3-bit field at bit 128
        // [3] anonymous union { int c; struct {...}; }, size 8
        push(0);
        push((5 << 24) | 2);
        push(8);
        push(c);
        push(1);
        push(0);
        push(0);
        push(4);
        push(0);
        // [4] anonymous struct { int d; int e; }, size 8
        push(0);
        push((4 << 24) | 2);
        push(8);
        push(d);
        push(1);
        push(0);
        push(e);
        push(1);
        push(32);
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
        let btf = Btf::parse(blob()).unwrap();
        assert_eq!(btf.member_offset("pair", "a").unwrap(), 0);
        assert_eq!(btf.member_offset("pair", "b").unwrap(), 4);
        assert!(matches!(
            btf.member_offset("pair", "g"),
            Err(BtfError::NoMember { .. })
        ));
        assert!(matches!(
            btf.member_offset("nothing", "a"),
            Err(BtfError::NoMember { .. })
        ));
        assert!(Btf::parse(vec![0; 8]).is_err());
    }

    #[test]
    fn looks_through_anonymous_members() {
        let btf = Btf::parse(blob()).unwrap();
        assert_eq!(btf.member_offset("pair", "c").unwrap(), 8);
        assert_eq!(btf.member_offset("pair", "d").unwrap(), 8);
        assert_eq!(btf.member_offset("pair", "e").unwrap(), 12);
        assert_eq!(btf.member_offset_u16("pair", "e").unwrap(), 12);
    }

    #[test]
    fn refuses_bit_fields() {
        let btf = Btf::parse(blob()).unwrap();
        assert!(matches!(
            btf.member_offset("pair", "f"),
            Err(BtfError::BitField { .. })
        ));
    }

    /// The members the programs read, on the running kernel's own BTF.
    #[test]
    fn running_kernel_has_the_sock_members() {
        let Ok(btf) = Btf::kernel() else {
            // Under CI the kernel has BTF; a skip there would hide a broken read.
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true" || v == "1"),
                "no readable {VMLINUX} under CI"
            );
            eprintln!("skipping: no readable {VMLINUX}");
            return;
        };
        assert_eq!(btf.member_offset("sock", "__sk_common").unwrap(), 0);
        let o = sock_offsets(&btf).unwrap_or_else(|e| panic!("{e}"));
        let n = netns_offsets(&btf).unwrap_or_else(|e| panic!("{e}"));
        // A pointer inside struct sock_common; the inode inside struct net.
        assert!(
            n.sk_net.is_multiple_of(8) && n.sk_net < 136 && n.net_inum > 0,
            "{n:?}"
        );
        // skc_dport and skc_num share a 32-bit port pair: remote port first.
        assert_eq!(o.sport, o.dport + 2);
        // Addresses: remote then local IPv4 address open the struct.
        assert_eq!((o.daddr, o.saddr), (0, 4));
        assert!(o.state > o.family && o.daddr_v6 > o.state && o.saddr_v6 == o.daddr_v6 + 16);
        btf.member_offset_u16("sock", "sk_err").unwrap();
        btf.member_offset_u16("sock", "sk_protocol").unwrap();
        // The accept queue follows struct inet_sock (which starts with
        // struct sock) inside struct inet_connection_sock; both pointers are
        // 8-aligned.
        let a = accept_offsets(&btf).unwrap_or_else(|e| panic!("{e}"));
        let inet_member = btf.member_offset("inet_sock", "inet_saddr").unwrap();
        assert!(
            a.accept_tail > inet_member
                && a.accept_tail.is_multiple_of(8)
                && a.req_sk.is_multiple_of(8),
            "{a:?}"
        );
    }
}
