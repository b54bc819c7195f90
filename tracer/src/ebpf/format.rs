//! Parsing of tracepoint format files
//! (`/sys/kernel/tracing/events/<category>/<name>/format`) into field offsets.

use std::{collections::HashMap, path::PathBuf};

use tracer_common::{
    FieldOffsets,
    layout::{ADDR_SOCKADDR, ADDR_SPLIT},
};

/// Where tracefs is mounted.
pub const TRACEFS: &str = "/sys/kernel/tracing";

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error(
        "tracepoint {category}:{name} does not exist on this kernel ({path}: {source}); \
         `tracer doctor` shows what this kernel offers"
    )]
    Missing {
        category: String,
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "tracepoint {category}:{name} has no field `{field}` on this kernel; \
         tracer cannot read it here"
    )]
    MissingField {
        category: String,
        name: String,
        field: &'static str,
    },
    #[error("tracepoint {category}:{name}: cannot parse its format file: {reason}")]
    Malformed {
        category: String,
        name: String,
        reason: String,
    },
}

/// One `field:` line: its name, byte offset and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub offset: u16,
    pub size: u16,
}

/// The fields of one tracepoint, by name.
#[derive(Debug, Clone)]
pub struct Format {
    pub category: String,
    pub name: String,
    pub fields: HashMap<String, Field>,
    /// The `print fmt:` line, which names the values of enum fields.
    pub print_fmt: String,
}

impl Format {
    /// Reads the format file of `category:name` from tracefs.
    pub fn read(category: &str, name: &str) -> Result<Self, FormatError> {
        let path: PathBuf = [TRACEFS, "events", category, name, "format"]
            .iter()
            .collect();
        let text = std::fs::read_to_string(&path).map_err(|source| FormatError::Missing {
            category: category.into(),
            name: name.into(),
            path,
            source,
        })?;
        Self::parse(category, name, &text)
    }

    /// Parses the text of a format file.
    pub fn parse(category: &str, name: &str, text: &str) -> Result<Self, FormatError> {
        let malformed = |reason: String| FormatError::Malformed {
            category: category.into(),
            name: name.into(),
            reason,
        };
        let mut fields = HashMap::new();
        let mut print_fmt = String::new();
        for line in text.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("print fmt:") {
                rest.trim().clone_into(&mut print_fmt);
                continue;
            }
            let Some(rest) = line.strip_prefix("field:") else {
                continue;
            };
            // `field:__u8 saddr[4];	offset:34;	size:4;	signed:0;`
            let mut parts = rest.split(';').map(str::trim);
            let decl = parts.next().unwrap_or_default();
            let mut offset = None;
            let mut size = None;
            for part in parts {
                if let Some(v) = part.strip_prefix("offset:") {
                    offset = v.parse::<u16>().ok();
                } else if let Some(v) = part.strip_prefix("size:") {
                    size = v.parse::<u16>().ok();
                }
            }
            let field_name = decl
                .rsplit(|c: char| c.is_whitespace() || c == '*')
                .next()
                .map(|n| n.split('[').next().unwrap_or(n))
                .filter(|n| !n.is_empty())
                .ok_or_else(|| malformed(format!("no field name in `{line}`")))?;
            let (Some(offset), Some(size)) = (offset, size) else {
                return Err(malformed(format!("no offset/size in `{line}`")));
            };
            fields.insert(field_name.to_owned(), Field { offset, size });
        }
        if fields.is_empty() {
            return Err(malformed("no fields".into()));
        }
        Ok(Self {
            category: category.into(),
            name: name.into(),
            fields,
            print_fmt,
        })
    }

    /// The names the kernel prints for the values of `field`: the pairs of
    /// its `__print_symbolic(REC->field, { 2, "NOT_SPECIFIED" }, …)`, where
    /// the values are numbers (not every kernel expands enum constants).
    pub fn symbols(&self, field: &str) -> Vec<(u64, String)> {
        let start = format!("__print_symbolic(REC->{field},");
        let Some(at) = self.print_fmt.find(&start) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut rest = &self.print_fmt[at + start.len()..];
        // Each pair is `{ NUMBER, "NAME" }`; the list ends at the first `)`
        // outside a pair.
        while let Some(open) = rest.find(['{', ')']) {
            if rest[open..].starts_with(')') {
                break;
            }
            let Some(close) = rest[open..].find('}') else {
                break;
            };
            let pair = &rest[open + 1..open + close];
            if let Some((value, name)) = pair.split_once(',') {
                let name = name.trim().trim_matches('"');
                if let Ok(value) = value.trim().parse::<u64>() {
                    out.push((value, name.to_owned()));
                }
            }
            rest = &rest[open + close + 1..];
        }
        out
    }

    pub fn field(&self, name: &str) -> Option<Field> {
        self.fields.get(name).copied()
    }

    fn require(&self, name: &'static str) -> Result<Field, FormatError> {
        self.field(name).ok_or_else(|| FormatError::MissingField {
            category: self.category.clone(),
            name: self.name.clone(),
            field: name,
        })
    }

    /// Builds the offsets a program needs: every name in `required` must exist,
    /// `optional` ones are filled when present. Address fields are recognised in
    /// both kernel layouts (split IPv4/IPv6 arrays, or sockaddr buffers).
    pub fn offsets(
        &self,
        required: &[&'static str],
        optional: &[&'static str],
    ) -> Result<FieldOffsets, FormatError> {
        let mut o = FieldOffsets::NONE;
        for &name in required {
            let f = self.require(name)?;
            set(&mut o, name, f.offset);
        }
        for &name in optional {
            if let Some(f) = self.field(name) {
                set(&mut o, name, f.offset);
            }
        }
        // A 4-byte `saddr` next to `saddr_v6` is the split layout; a larger
        // `saddr` is a sockaddr buffer (sockaddr_in or sockaddr_in6).
        if let Some(saddr) = self.field("saddr") {
            o.addr_mode = if saddr.size > 4 && self.field("saddr_v6").is_none() {
                ADDR_SOCKADDR
            } else {
                ADDR_SPLIT
            };
        }
        Ok(o)
    }
}

fn set(o: &mut FieldOffsets, name: &str, offset: u16) {
    let slot = match name {
        "skaddr" => &mut o.skaddr,
        "oldstate" => &mut o.oldstate,
        "newstate" => &mut o.newstate,
        "state" => &mut o.state,
        "sport" => &mut o.sport,
        "dport" => &mut o.dport,
        "family" => &mut o.family,
        "protocol" => &mut o.protocol,
        "saddr" => &mut o.saddr,
        "daddr" => &mut o.daddr,
        "saddr_v6" => &mut o.saddr_v6,
        "daddr_v6" => &mut o.daddr_v6,
        // `tcp:tcp_retransmit_skb` calls its error `err` (6.18).
        "error" | "err" => &mut o.error,
        "reason" => &mut o.reason,
        "ret" => &mut o.ret,
        _ => return,
    };
    *slot = offset;
}

#[cfg(test)]
mod tests {
    use tracer_common::layout::ABSENT;

    use super::*;

    const RESET_61: &str = include_str!("fixtures/tcp_send_reset-6.1.format");
    const RESET_618: &str = include_str!("fixtures/tcp_send_reset-6.18.format");
    const STATE_61: &str = include_str!("fixtures/inet_sock_set_state-6.1.format");
    const STATE_618: &str = include_str!("fixtures/inet_sock_set_state-6.18.format");
    const KFREE_SKB_618: &str = include_str!("fixtures/kfree_skb-6.18.format");

    #[test]
    fn enum_names_come_from_the_print_format() {
        let f = Format::parse("skb", "kfree_skb", KFREE_SKB_618).unwrap();
        let reasons = f.symbols("reason");
        assert!(reasons.len() > 50, "{reasons:?}");
        let name = |v: u64| {
            reasons
                .iter()
                .find(|(n, _)| *n == v)
                .map(|(_, s)| s.as_str())
        };
        assert_eq!(name(2), Some("NOT_SPECIFIED"));
        assert_eq!(name(3), Some("NO_SOCKET"));
        assert_eq!(name(12), Some("NETFILTER_DROP"));
        assert_eq!(name(40), Some("TCP_LISTEN_OVERFLOW"));
        assert!(f.field("rx_sk").is_some());
        // The reset reasons of 6.18; 6.1's reset has none.
        let reset = Format::parse("tcp", "tcp_send_reset", RESET_618).unwrap();
        let reasons = reset.symbols("reason");
        assert_eq!(reasons.first(), Some(&(0, "NOT_SPECIFIED".to_owned())));
        let old = Format::parse("tcp", "tcp_send_reset", RESET_61).unwrap();
        assert!(old.symbols("reason").is_empty());
        // Enum constants that are not numbers are left out.
        let state = Format::parse("tcp", "tcp_send_reset", RESET_618).unwrap();
        assert!(state.symbols("state").is_empty());
    }

    #[test]
    fn send_reset_6_1_has_split_addresses() {
        let f = Format::parse("tcp", "tcp_send_reset", RESET_61).unwrap();
        assert_eq!(
            f.field("sport"),
            Some(Field {
                offset: 28,
                size: 2
            })
        );
        let o = f
            .offsets(
                &["skaddr", "saddr", "daddr"],
                &["sport", "dport", "family", "saddr_v6", "daddr_v6", "reason"],
            )
            .unwrap();
        assert_eq!(o.skaddr, 16);
        assert_eq!((o.sport, o.dport, o.family), (28, 30, 32));
        assert_eq!((o.saddr, o.daddr, o.saddr_v6, o.daddr_v6), (34, 38, 42, 58));
        assert_eq!(o.reason, ABSENT);
        assert_eq!(o.addr_mode, ADDR_SPLIT);
    }

    #[test]
    fn send_reset_6_18_has_sockaddrs_and_reason() {
        let f = Format::parse("tcp", "tcp_send_reset", RESET_618).unwrap();
        let o = f
            .offsets(
                &["skaddr", "saddr", "daddr"],
                &["sport", "dport", "family", "saddr_v6", "daddr_v6", "reason"],
            )
            .unwrap();
        assert_eq!(o.reason, 28);
        assert_eq!((o.saddr, o.daddr), (32, 60));
        assert_eq!(o.sport, ABSENT);
        assert_eq!(o.addr_mode, ADDR_SOCKADDR);
    }

    #[test]
    fn set_state_layouts_agree_where_they_should() {
        for text in [STATE_61, STATE_618] {
            let f = Format::parse("sock", "inet_sock_set_state", text).unwrap();
            let o = f
                .offsets(
                    &[
                        "skaddr", "oldstate", "newstate", "sport", "dport", "family", "protocol",
                        "saddr", "daddr", "saddr_v6", "daddr_v6",
                    ],
                    &[],
                )
                .unwrap();
            assert_eq!((o.skaddr, o.oldstate, o.newstate), (8, 16, 20));
            assert_eq!((o.saddr, o.saddr_v6, o.daddr_v6), (32, 40, 56));
            assert_eq!(o.addr_mode, ADDR_SPLIT);
        }
    }

    #[test]
    fn missing_field_names_tracepoint_and_field() {
        let f = Format::parse("tcp", "tcp_send_reset", RESET_618).unwrap();
        let err = f.offsets(&["sport"], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "tracepoint tcp:tcp_send_reset has no field `sport` on this kernel; tracer cannot read it here"
        );
    }

    #[test]
    fn pointer_and_array_declarations_parse() {
        let text = "format:\n\tfield:const void * skaddr;\toffset:8;\tsize:8;\tsigned:0;\n\tfield:__u8 saddr[28];\toffset:32;\tsize:28;\tsigned:0;\n";
        let f = Format::parse("c", "n", text).unwrap();
        assert_eq!(f.field("skaddr"), Some(Field { offset: 8, size: 8 }));
        assert_eq!(
            f.field("saddr"),
            Some(Field {
                offset: 32,
                size: 28
            })
        );
    }

    #[test]
    fn empty_or_garbled_format_is_an_error() {
        assert!(Format::parse("c", "n", "name: x\n").is_err());
        assert!(Format::parse("c", "n", "\tfield:int x;\toffset:z;\tsize:4;\n").is_err());
    }
}
