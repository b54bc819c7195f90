//! The last known TCP state of each live socket, learned from state events, so
//! events that carry no state (a RST received) can say which phase they hit.

use std::collections::HashMap;

use tracer_common::{
    EventKind,
    tcp::{
        CLOSE, CLOSE_WAIT, CLOSING, ESTABLISHED, FIN_WAIT1, FIN_WAIT2, LAST_ACK, NEW_SYN_RECV,
        SYN_RECV, SYN_SENT, TIME_WAIT,
    },
};

use crate::event::TraceEvent;

/// The phase of a connection an event hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Handshake,
    Established,
    Closing,
    /// No connection: a closed or listening socket, or none at all.
    None,
}

impl Phase {
    pub fn of_state(state: u8) -> Self {
        match state {
            SYN_SENT | SYN_RECV | NEW_SYN_RECV => Self::Handshake,
            ESTABLISHED => Self::Established,
            FIN_WAIT1 | FIN_WAIT2 | TIME_WAIT | CLOSE_WAIT | LAST_ACK | CLOSING => Self::Closing,
            _ => Self::None,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::Handshake => "handshake",
            Self::Established => "established",
            Self::Closing => "closing",
            Self::None => "none",
        }
    }
}

/// Socket address → last state seen.
#[derive(Debug, Default)]
pub struct Connections {
    states: HashMap<u64, u8>,
    /// Sockets that just moved to CLOSE → the state they left: a RST sent by
    /// `close()` with SO_LINGER {1, 0} is reported after the move.
    closed_from: HashMap<u64, u8>,
}

/// Bound on `closed_from`; it is cleared when full.
const RECENTLY_CLOSED: usize = 4096;

impl Connections {
    /// Learns from `ev` and returns the state the socket was in when `ev` happened.
    pub fn observe(&mut self, ev: &TraceEvent) -> u8 {
        if ev.kind == EventKind::State {
            if ev.new_state == CLOSE {
                self.states.remove(&ev.sk);
                if self.closed_from.len() >= RECENTLY_CLOSED {
                    self.closed_from.clear();
                }
                self.closed_from.insert(ev.sk, ev.old_state);
            } else {
                self.states.insert(ev.sk, ev.new_state);
            }
            return ev.old_state;
        }
        match ev.old_state {
            CLOSE => self.closed_from.get(&ev.sk).copied().unwrap_or(CLOSE),
            0 => self.states.get(&ev.sk).copied().unwrap_or(0),
            state => state,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.states.len()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    fn ev(kind: EventKind, old: u8, new: u8) -> TraceEvent {
        TraceEvent {
            ts_ns: 0,
            mono_ns: 0,
            kind,
            pid: 1,
            comm: String::new(),
            unattributed: false,
            no_socket: false,
            sk: 7,
            family: 2,
            saddr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            sport: 1,
            daddr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            dport: 2,
            old_state: old,
            new_state: new,
            errno: 0,
            value: 0,
        }
    }

    #[test]
    fn reset_received_in_syn_sent_is_a_handshake_reset() {
        let mut c = Connections::default();
        c.observe(&ev(EventKind::State, CLOSE, SYN_SENT));
        let state = c.observe(&ev(EventKind::RstReceived, 0, 0));
        assert_eq!(Phase::of_state(state), Phase::Handshake);
        c.observe(&ev(EventKind::State, SYN_SENT, CLOSE));
        assert_eq!(c.len(), 0);
        assert_eq!(
            Phase::of_state(c.observe(&ev(EventKind::RstReceived, 0, 0))),
            Phase::None
        );
    }

    #[test]
    fn reset_sent_after_close_takes_the_state_it_closed_from() {
        let mut c = Connections::default();
        c.observe(&ev(EventKind::State, ESTABLISHED, CLOSE));
        let state = c.observe(&ev(EventKind::RstSent, CLOSE, CLOSE));
        assert_eq!(Phase::of_state(state), Phase::Established);
    }

    #[test]
    fn events_with_a_state_use_it() {
        let mut c = Connections::default();
        let state = c.observe(&ev(EventKind::RstSent, CLOSE_WAIT, CLOSE_WAIT));
        assert_eq!(Phase::of_state(state), Phase::Closing);
    }
}
