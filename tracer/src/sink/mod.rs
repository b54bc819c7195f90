//! Outputs fed by the tracer: CSV snapshots and JSON lines.

pub mod csv;
pub mod json;
