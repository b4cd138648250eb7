//! Helpers shared by the adaptive tests.
#![allow(dead_code, reason = "each test file uses a different subset")]

pub(crate) mod plant;
pub(crate) mod sim;
