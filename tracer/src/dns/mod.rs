//! DNS, per process: the kernel's DNS records decoded ([`DnsMessage`]),
//! queries matched with their answers or timed out ([`lookups`]), and names
//! and codes as people read them ([`wire`]).

pub mod lookups;
pub mod wire;

use tracer_common::dns::{self, DnsEvent, FLAG_ANSWER, FLAG_TCP};

use crate::event::{Clock, DecodeError, TraceEvent};

pub use lookups::{Lookup, Lookups, Outcome};

/// One DNS message the kernel saw on a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsMessage {
    /// Owner, time, socket cookie (`sk`), local address (`saddr`/`sport`)
    /// and the server's (`daddr`/`dport`).
    pub ev: TraceEvent,
    pub id: u16,
    pub qtype: u16,
    /// The response code (answers only).
    pub rcode: u8,
    pub answer: bool,
    pub tcp: bool,
    /// The question's name, dotted ([`wire::name`]).
    pub name: String,
}

impl DnsMessage {
    /// Decodes a [`DnsEvent`] record.
    pub fn decode(bytes: &[u8], clock: &Clock) -> Result<Self, DecodeError> {
        if bytes.len() != DnsEvent::SIZE {
            return Err(DecodeError::Size(bytes.len()));
        }
        // SAFETY: length checked; DnsEvent is plain old data valid for any bytes.
        let raw: DnsEvent = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
        let ev = TraceEvent::from_raw(&raw.header, clock)?;
        let m = dns::unpack(raw.header.value);
        let len = usize::from(m.name_len).min(raw.name.len());
        Ok(Self {
            ev,
            id: m.id,
            qtype: m.qtype,
            rcode: m.rcode,
            answer: raw.header.flags & FLAG_ANSWER != 0,
            tcp: raw.header.flags & FLAG_TCP != 0,
            name: wire::name(&raw.name[..len]),
        })
    }

    /// The server's address.
    pub fn server(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.ev.daddr, self.ev.dport)
    }
}

#[cfg(test)]
mod tests {
    use tracer_common::{Event, EventKind, dns::Message};

    use super::*;

    /// The bytes of a DNS record as the kernel writes it.
    pub fn record(answer: bool, id: u16, rcode: u8, name: &[u8]) -> Vec<u8> {
        let mut raw = DnsEvent {
            header: Event::zeroed(),
            name: [0xaa; dns::NAME_MAX + 1],
        };
        raw.header.kind = EventKind::Dns as u32;
        raw.header.ts_ns = 1_000;
        raw.header.pid = 42;
        raw.header.sk = 7;
        raw.header.family = tracer_common::tcp::AF_INET;
        raw.header.daddr[..4].copy_from_slice(&[10, 0, 0, 53]);
        raw.header.dport = 53;
        raw.header.flags = if answer { FLAG_ANSWER } else { 0 };
        raw.header.value = dns::pack(Message {
            id,
            qtype: 1,
            rcode,
            name_len: name.len() as u8,
        });
        raw.name[..name.len()].copy_from_slice(name);
        // SAFETY: plain old data, no padding.
        unsafe {
            std::slice::from_raw_parts((&raw as *const DnsEvent).cast::<u8>(), DnsEvent::SIZE)
        }
        .to_vec()
    }

    #[test]
    fn decodes_a_record() {
        let bytes = record(true, 0x1234, 3, b"\x02nx\x04test");
        let m = DnsMessage::decode(&bytes, &Clock::with_offset(0)).unwrap();
        assert_eq!(m.name, "nx.test");
        assert_eq!(
            (m.id, m.qtype, m.rcode, m.answer, m.tcp),
            (0x1234, 1, 3, true, false)
        );
        assert_eq!(m.server().to_string(), "10.0.0.53:53");
        assert_eq!(m.ev.pid, 42);
        assert!(DnsMessage::decode(&bytes[1..], &Clock::with_offset(0)).is_err());
    }
}
