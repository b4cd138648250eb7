//! Criterion benchmarks of tower-pressure; the benches live in `benches/`.
//!
//! Run with `cargo bench -p tower-pressure-benches` (or `cargo xtask bench`).
