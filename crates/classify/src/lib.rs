//! Priority classification for tower-pressure: `ClassifyLayer` puts a
//! [`Priority`](tower_pressure_core::Priority) and a
//! [`Deadline`](tower_pressure_core::Deadline) into each request's extensions.
//!
//! **Status: not implemented yet.** This crate is a placeholder in the
//! workspace; the layer arrives with the classifier issue. Nothing here works
//! yet, and nothing is exported.
