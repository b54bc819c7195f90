//! DNS names and numbers as people read them: a question's name from its
//! wire form, query types and response codes by name.

use std::borrow::Cow;

/// The dotted form of a name in wire format (length-prefixed labels, as the
/// kernel copies it, without the final zero): `example.com`, `.` for the
/// root. Bytes that are not printable ASCII, dots inside a label and
/// backslashes are escaped as `\DDD` (RFC 4343's presentation form). A
/// label running past the end keeps what there is.
pub fn name(wire: &[u8]) -> String {
    let mut out = String::with_capacity(wire.len());
    let mut rest = wire;
    while let Some((&len, tail)) = rest.split_first() {
        if len == 0 {
            break;
        }
        let len = usize::from(len).min(tail.len());
        let (label, after) = tail.split_at(len);
        if !out.is_empty() {
            out.push('.');
        }
        for &b in label {
            if b.is_ascii_graphic() && b != b'.' && b != b'\\' {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("\\{b:03}"));
            }
        }
        rest = after;
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

/// A query type's mnemonic (`A`, `AAAA` …), or `TYPEn` (RFC 3597).
pub fn qtype(value: u16) -> Cow<'static, str> {
    Cow::Borrowed(match value {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        35 => "NAPTR",
        43 => "DS",
        48 => "DNSKEY",
        64 => "SVCB",
        65 => "HTTPS",
        255 => "ANY",
        257 => "CAA",
        other => return Cow::Owned(format!("TYPE{other}")),
    })
}

/// A response code's name (`NOERROR`, `NXDOMAIN` …), or `RCODEn`.
pub fn rcode(value: u8) -> Cow<'static, str> {
    Cow::Borrowed(match value {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        other => return Cow::Owned(format!("RCODE{other}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_wire() {
        assert_eq!(name(b"\x07example\x03com"), "example.com");
        assert_eq!(name(b""), ".");
        assert_eq!(name(b"\x03a.b\x01\\"), "a\\046b.\\092");
        assert_eq!(name(b"\x02\xff\x00"), "\\255\\000");
        // Truncated: the label keeps what there is.
        assert_eq!(name(b"\x05ab"), "ab");
    }

    #[test]
    fn numbers_by_name() {
        assert_eq!(qtype(28), "AAAA");
        assert_eq!(qtype(999), "TYPE999");
        assert_eq!(rcode(3), "NXDOMAIN");
        assert_eq!(rcode(2), "SERVFAIL");
        assert_eq!(rcode(12), "RCODE12");
    }
}
