//! Placeholder so the workspace manifest parses; the CPU helper writes the real example.
fn main() {}
