//! TCP state numbers as the kernel defines them (`include/net/tcp_states.h`).

pub const ESTABLISHED: u8 = 1;
pub const SYN_SENT: u8 = 2;
pub const SYN_RECV: u8 = 3;
pub const FIN_WAIT1: u8 = 4;
pub const FIN_WAIT2: u8 = 5;
pub const TIME_WAIT: u8 = 6;
pub const CLOSE: u8 = 7;
pub const CLOSE_WAIT: u8 = 8;
pub const LAST_ACK: u8 = 9;
pub const LISTEN: u8 = 10;
pub const CLOSING: u8 = 11;
pub const NEW_SYN_RECV: u8 = 12;
pub const BOUND_INACTIVE: u8 = 13;

/// Kernel name without the `TCP_` prefix; `None` for numbers this build does not know.
pub const fn state_name(state: u8) -> Option<&'static str> {
    Some(match state {
        ESTABLISHED => "ESTABLISHED",
        SYN_SENT => "SYN_SENT",
        SYN_RECV => "SYN_RECV",
        FIN_WAIT1 => "FIN_WAIT1",
        FIN_WAIT2 => "FIN_WAIT2",
        TIME_WAIT => "TIME_WAIT",
        CLOSE => "CLOSE",
        CLOSE_WAIT => "CLOSE_WAIT",
        LAST_ACK => "LAST_ACK",
        LISTEN => "LISTEN",
        CLOSING => "CLOSING",
        NEW_SYN_RECV => "NEW_SYN_RECV",
        BOUND_INACTIVE => "BOUND_INACTIVE",
        _ => return None,
    })
}

pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;
pub const IPPROTO_TCP: u16 = 6;
