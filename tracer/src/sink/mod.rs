//! Outputs fed by the tracer: CSV snapshots, JSON lines, the exit summary.

pub mod csv;
pub mod json;
pub mod pipe;
pub mod summary;
