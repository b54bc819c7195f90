//! Outputs fed by the tracer: JSON lines today.

pub mod json;
