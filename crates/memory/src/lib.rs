//! Memory-pressure shedding for tower-pressure: memory sources (cgroup, PSI,
//! `/proc/meminfo`) and `MemoryShedLayer`.
//!
//! **Status: not implemented yet.** This crate is a placeholder in the
//! workspace; it arrives with the resource-pressure issue. Nothing here works
//! yet, and nothing is exported.
