//! Code shared by several test binaries (each includes it with `mod support;` and uses what it
//! needs, hence the `dead_code` allowance; `pub` here means "shared between test binaries").
#![allow(dead_code, unreachable_pub)]

pub mod model;
