//! Adaptive limits for tower-pressure: latency-driven concurrency limits
//! (`Aimd`, `Gradient2`, `Vegas`), a threshold tuner and a recovery ramp.
//!
//! **Status: not implemented yet.** This crate is a placeholder in the
//! workspace; it arrives with the adaptive issue. Nothing here works yet, and
//! nothing is exported.
