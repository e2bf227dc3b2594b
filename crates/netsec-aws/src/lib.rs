//! Applies network plans to AWS and reads live security groups back, through the AWS SDK for
//! Rust. The pure model, evaluation and lints are in `membrain-netsec`; this crate only converts
//! between SDK types and that model and performs the calls.

#[cfg(feature = "test-support")]
pub mod testing;
