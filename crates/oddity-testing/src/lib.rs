//! Synthetic data: seeded, fast generators of the reference systems' payloads, shared by tests,
//! criterion benchmarks and the binary's `bench` command.

mod signals;

pub use signals::Emitter;
