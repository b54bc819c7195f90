//! The DNS record: an [`Event`] header followed by the question's name.
//!
//! The kernel sends what matches an answer to its query and names it, and
//! nothing else of the message: the header's id, opcode-0 flags and rcode,
//! the question's name (wire format: length-prefixed labels, without the
//! final zero) and type. Userspace matches answers to queries by socket
//! cookie and id.

use crate::Event;

/// Longest name the kernel copies (a DNS name is at most 255 bytes).
pub const NAME_MAX: usize = 255;

/// The DNS port.
pub const PORT: u16 = 53;

/// Set in [`Event::flags`] of a DNS record that is an answer (the header's
/// QR bit); clear for a query.
pub const FLAG_ANSWER: u32 = 1 << 3;
/// Set when the message went over TCP (after the two-byte length).
pub const FLAG_TCP: u32 = 1 << 4;

/// A DNS message seen on a socket. In `header`: `kind` is
/// [`crate::EventKind::Dns`], `sk` the socket's cookie, `pid`/`comm` its
/// owner (recorded when it connected or sent to port 53), local and remote
/// (the server's) addresses, `old_state` and `new_state` 1 for an answer
/// and 0 for a query (what a lost record's count needs), and `value` packs
/// the rest (see [`pack`]).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DnsEvent {
    pub header: Event,
    /// The question's name: the first `name_len` bytes (see [`unpack`]).
    pub name: [u8; NAME_MAX + 1],
}

impl DnsEvent {
    pub const SIZE: usize = core::mem::size_of::<Self>();
}

const _: () = assert!(DnsEvent::SIZE == Event::SIZE + NAME_MAX + 1);

/// The fields of a DNS message packed in [`Event::value`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    /// The header's id.
    pub id: u16,
    /// The question's type (1 = A, 28 = AAAA …).
    pub qtype: u16,
    /// The header's rcode (0 = NOERROR, 3 = NXDOMAIN …); 0 in queries.
    pub rcode: u8,
    /// Bytes of `DnsEvent::name` used.
    pub name_len: u8,
}

/// `value` of a DNS record: id, qtype, rcode and name length.
pub const fn pack(m: Message) -> u64 {
    m.id as u64 | (m.qtype as u64) << 16 | (m.rcode as u64) << 32 | (m.name_len as u64) << 40
}

pub const fn unpack(value: u64) -> Message {
    Message {
        id: value as u16,
        qtype: (value >> 16) as u16,
        rcode: (value >> 32) as u8 & 0x0f,
        name_len: (value >> 40) as u8,
    }
}

#[cfg(feature = "user")]
// SAFETY: repr(C), an Event (no padding) and a byte array, 360 bytes in all.
unsafe impl aya::Pod for DnsEvent {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_unpacks() {
        let m = Message {
            id: 0xbeef,
            qtype: 28,
            rcode: 3,
            name_len: 255,
        };
        assert_eq!(unpack(pack(m)), m);
    }
}
