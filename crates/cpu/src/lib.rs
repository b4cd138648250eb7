//! CPU throttling for tower-pressure: CPU sources (cgroup `cpu.stat`,
//! `/proc/stat`) and `CpuThrottleLayer`, a priority-scaled delay.
//!
//! **Status: not implemented yet.** This crate is a placeholder in the
//! workspace; it arrives with the resource-pressure issue. Nothing here works
//! yet, and nothing is exported.
