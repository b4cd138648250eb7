//! Priority-queue admission for tower-pressure: `PriorityLimiter` (a
//! concurrency limit with a bounded priority wait queue) and `AdmissionLayer`.
//!
//! **Status: not implemented yet.** This crate is a placeholder in the
//! workspace; the limiter arrives with the admission issue. Nothing here works
//! yet, and nothing is exported.
