//! The kernel's names for its drop reasons (`enum skb_drop_reason`) and,
//! on 6.10 and later, its reset reasons (`enum sk_rst_reason`), read once
//! from the `skb:kfree_skb` and `tcp:tcp_send_reset` format files: the
//! numbers differ between releases, so they are never hard-coded. Kept for
//! the whole run, for whoever renders a drop or a reset.

use std::sync::OnceLock;

use super::format::Format;

static DROP_REASONS: OnceLock<Vec<(u64, String)>> = OnceLock::new();
static RESET_REASONS: OnceLock<Vec<(u64, String)>> = OnceLock::new();

/// The names of `field`'s values in tracepoint `category:name`'s format
/// file, read once into `table`; empty where the tracepoint or the names
/// are missing.
fn names(
    table: &'static OnceLock<Vec<(u64, String)>>,
    category: &str,
    name: &str,
    field: &str,
) -> &'static [(u64, String)] {
    table.get_or_init(|| {
        Format::read(category, name)
            .map(|f| f.symbols(field))
            .unwrap_or_default()
    })
}

/// The name of `value` in `table`, once it has been read.
fn name_in(table: &'static OnceLock<Vec<(u64, String)>>, value: u64) -> Option<&'static str> {
    table
        .get()?
        .iter()
        .find(|(n, _)| *n == value)
        .map(|(_, name)| name.as_str())
}

/// Reads this kernel's drop-reason names (once).
pub fn load() -> &'static [(u64, String)] {
    names(&DROP_REASONS, "skb", "kfree_skb", "reason")
}

/// Reads this kernel's reset-reason names (once); empty before 6.10.
pub fn load_resets() -> &'static [(u64, String)] {
    names(&RESET_REASONS, "tcp", "tcp_send_reset", "reason")
}

/// The name of drop reason `value` (`NETFILTER_DROP`), once [`load`]ed.
pub fn drop_reason(value: u64) -> Option<&'static str> {
    name_in(&DROP_REASONS, value)
}

/// The name of reset reason `value` (`TCP_ABORT_ON_LINGER`), once
/// [`load_resets`] has read them.
pub fn reset_reason(value: u64) -> Option<&'static str> {
    name_in(&RESET_REASONS, value)
}

/// The number of drop reason `name` on this kernel.
pub fn drop_reason_value(name: &str) -> Option<u64> {
    load().iter().find(|(_, n)| n == name).map(|(v, _)| *v)
}
