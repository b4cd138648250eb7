//! Overload management for Rust services as composable `tower` layers.
//!
//! A service pushed past its capacity should keep serving its most important
//! work at full speed, refuse the rest fast and honestly (503 +
//! `Retry-After`, gRPC `RESOURCE_EXHAUSTED` + pushback), never lose a
//! permit, never grow an unbounded queue, and recover on its own.
//!
//! **Status:** this facade re-exports the shared vocabulary of
//! [`tower-pressure-core`](tower_pressure_core) today. The layers
//! (classifier, admission, memory, CPU, adaptive) and the one-call stack are
//! added as their crates land; until then they are not exported here.
//!
//! ```
//! use tower_pressure::{Overloaded, Priority, Reason};
//!
//! let err = Overloaded::new(Reason::QueueFull, Priority::Low);
//! assert_eq!(err.retry_after_secs(), 1);
//! ```
//!
//! # Features
//!
//! All off by default: `http`, `grpc`, `serde` (forwarded to the core crate).

pub use tower_pressure_core::*;
