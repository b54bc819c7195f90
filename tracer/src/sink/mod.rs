//! Outputs fed by the tracer: CSV snapshots, JSON lines, Prometheus metrics,
//! the exit summary.

pub mod csv;
pub mod json;
pub mod metrics;
pub mod pipe;
pub mod summary;
