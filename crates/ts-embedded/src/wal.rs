//! The write-ahead log: segment files `wal-<n>.log` of entries `[length u32][crc32 u32][payload]`.
//! An entry is durable once `append` returns: writers append in turn and share fsyncs (group
//! commit).
//!
//! Replay reads a segment's entries up to the first one that is incomplete or fails its
//! checksum. If nothing valid follows that entry, it is a torn tail — what a crash during an
//! append leaves; those bytes were never acknowledged — and replay ends there. If a valid entry
//! follows, the file was damaged after it was written: skipping the damage would silently lose
//! acknowledged writes, so [`Ending::Corrupt`] stops the store from opening.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use membrain_timeseries::TsError;

const HEADER_BYTES: usize = 8;

pub(crate) fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("wal-{segment:016}.log"))
}

/// Frames a payload as one log entry.
pub(crate) fn frame(payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER_BYTES + payload.len());
    bytes.extend_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    bytes.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// How a segment's bytes end after its last valid entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Nothing follows the last entry.
    Clean,
    /// An incomplete or checksum-failing entry at byte `offset` with nothing valid after it: a
    /// crash during an append. Its bytes were never acknowledged.
    Torn { offset: usize },
    /// A bad entry at byte `offset` and a valid one after it (at `next_valid`): damage.
    Corrupt {
        offset: usize,
        next_valid: usize,
        reason: &'static str,
    },
}

/// The valid entries of a segment's bytes, in order, and how the bytes end after them.
pub(crate) fn entries(bytes: &[u8]) -> (Vec<&[u8]>, Ending) {
    let mut entries = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        match frame_at(bytes, offset) {
            Ok(payload) => {
                entries.push(payload);
                offset += HEADER_BYTES + payload.len();
            }
            Err(reason) => {
                let ending = match next_valid_frame(bytes, offset + 1) {
                    None => Ending::Torn { offset },
                    Some(next_valid) => Ending::Corrupt {
                        offset,
                        next_valid,
                        reason,
                    },
                };
                return (entries, ending);
            }
        }
    }
    (entries, Ending::Clean)
}

/// The payload of the entry starting at `offset`, or why there is none.
fn frame_at(bytes: &[u8], offset: usize) -> Result<&[u8], &'static str> {
    let rest = bytes.get(offset..).unwrap_or_default();
    let Some((header, body)) = rest.split_first_chunk::<HEADER_BYTES>() else {
        return Err("an incomplete entry header");
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > body.len() {
        return Err("an entry longer than the rest of the file");
    }
    let payload = &body[..len];
    // Every entry starts with its kind, so zeros (a file extended but never written) and most
    // garbage fail here before a checksum is computed.
    if !payload
        .first()
        .is_some_and(|kind| crate::entry::is_kind(*kind))
    {
        return Err("an entry of no known kind");
    }
    if crc32fast::hash(payload) != crc {
        return Err("an entry whose checksum does not match");
    }
    Ok(payload)
}

/// The first offset from `from` where a valid entry starts. A damaged length hides where the
/// next entry begins, so every offset is tried; most fail on the length or the kind byte, and a
/// torn tail (the only case without a valid entry ahead) is at most one group commit long.
fn next_valid_frame(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len()).find(|&offset| frame_at(bytes, offset).is_ok())
}

struct Appender {
    file: Arc<File>,
    segment: u64,
    /// Entries appended since open, over all segments: the group-commit sequence.
    appended: u64,
    bytes_since_checkpoint: u64,
    /// Set when a write or fsync failed: the file's tail is unknown, so nothing more is taken.
    failed: Option<String>,
}

pub(crate) struct Wal {
    dir: PathBuf,
    appender: Mutex<Appender>,
    /// The highest sequence known durable; held while fsyncing so one fsync serves every writer
    /// that appended before it started.
    synced: Mutex<u64>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves no half-made state behind: continue.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unavailable(what: &str, path: &Path, error: std::io::Error) -> TsError {
    TsError::Unavailable(format!(
        "{what} {}: {error}; check the disk (space, permissions) and restart membrain",
        path.display()
    ))
}

/// Makes a rename or a new file in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), TsError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|error| unavailable("cannot sync the directory", dir, error))
}

/// Options that create files readable by their owner alone (0600 on Unix): the log and the
/// checkpoints hold every tenant's records.
pub(crate) fn private_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Creates `dir` (and missing parents) readable by its owner alone (0700 on Unix). An existing
/// directory keeps its permissions: the operator may have chosen them.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn create_segment(dir: &Path, segment: u64) -> Result<File, TsError> {
    let path = segment_path(dir, segment);
    let file = private_file()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|error| unavailable("cannot create the log segment", &path, error))?;
    sync_dir(dir)?;
    Ok(file)
}

impl Wal {
    /// Starts a new segment numbered `segment` (older ones are only read by replay).
    pub(crate) fn create(dir: &Path, segment: u64) -> Result<Self, TsError> {
        let file = create_segment(dir, segment)?;
        Ok(Self {
            dir: dir.to_owned(),
            appender: Mutex::new(Appender {
                file: Arc::new(file),
                segment,
                appended: 0,
                bytes_since_checkpoint: 0,
                failed: None,
            }),
            synced: Mutex::new(0),
        })
    }

    /// Appends one entry and returns once it is on disk. Blocking.
    pub(crate) fn append(&self, payload: &[u8]) -> Result<(), TsError> {
        let entry = frame(payload);
        let sequence = {
            let mut appender = lock(&self.appender);
            if let Some(failure) = &appender.failed {
                return Err(TsError::Unavailable(failure.clone()));
            }
            if let Err(error) = (&*appender.file).write_all(&entry) {
                return Err(self.fail(&mut appender, "cannot append to", error));
            }
            appender.appended += 1;
            appender.bytes_since_checkpoint += entry.len() as u64;
            appender.appended
        };
        let mut synced = lock(&self.synced);
        if *synced >= sequence {
            return Ok(());
        }
        let (target, file) = {
            let appender = lock(&self.appender);
            (appender.appended, Arc::clone(&appender.file))
        };
        if let Err(error) = file.sync_data() {
            let mut appender = lock(&self.appender);
            return Err(self.fail(&mut appender, "cannot fsync", error));
        }
        *synced = target;
        Ok(())
    }

    fn fail(&self, appender: &mut Appender, what: &str, error: std::io::Error) -> TsError {
        let path = segment_path(&self.dir, appender.segment);
        let failure = unavailable(&format!("{what} the write-ahead log"), &path, error);
        appender.failed = Some(failure.message().to_owned());
        tracing::error!(%failure, "the time-series write-ahead log failed; writes are refused until restart");
        failure
    }

    /// Closes the current segment (every entry in it is already durable: callers hold the commit
    /// gate exclusively) and starts the next; returns the new segment's number.
    pub(crate) fn rotate(&self) -> Result<u64, TsError> {
        let mut appender = lock(&self.appender);
        let next = appender.segment + 1;
        appender.file = Arc::new(create_segment(&self.dir, next)?);
        appender.segment = next;
        appender.bytes_since_checkpoint = 0;
        Ok(next)
    }

    pub(crate) fn bytes_since_checkpoint(&self) -> u64 {
        lock(&self.appender).bytes_since_checkpoint
    }

    /// Deletes segments older than `segment`, which a checkpoint now holds.
    pub(crate) fn delete_before(&self, segment: u64) {
        for (number, path) in list(&self.dir, "wal-", ".log") {
            if number < segment
                && let Err(error) = fs::remove_file(&path)
            {
                tracing::warn!(path = %path.display(), %error, "cannot delete an old log segment");
            }
        }
    }
}

/// Files in `dir` named `<prefix><number><suffix>`, sorted by number.
pub(crate) fn list(dir: &Path, prefix: &str, suffix: &str) -> Vec<(u64, PathBuf)> {
    let Ok(read) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(u64, PathBuf)> = read
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let number = name
                .strip_prefix(prefix)?
                .strip_suffix(suffix)?
                .parse()
                .ok()?;
            Some((number, entry.path()))
        })
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A payload as the store writes them: a kind byte first.
    fn payload(text: &str) -> Vec<u8> {
        let mut bytes = vec![1];
        bytes.extend_from_slice(text.as_bytes());
        bytes
    }

    #[test]
    fn a_torn_tail_keeps_the_entries_before_it() {
        let (one, two, three) = (payload("one"), payload("two"), payload("three"));
        let mut bytes = frame(&one);
        bytes.extend(frame(&two));
        assert_eq!(entries(&bytes), (vec![&one[..], &two[..]], Ending::Clean));
        let whole = bytes.len();
        bytes.extend(frame(&three));
        for cut in whole + 1..bytes.len() {
            assert_eq!(
                entries(&bytes[..cut]),
                (vec![&one[..], &two[..]], Ending::Torn { offset: whole }),
                "cut at {cut}"
            );
        }
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        assert_eq!(
            entries(&bytes),
            (vec![&one[..], &two[..]], Ending::Torn { offset: whole })
        );
        // A file extended with zeros that were never written is a torn tail too.
        let mut zeros = frame(&one);
        zeros.extend([0; 64]);
        assert_eq!(
            entries(&zeros),
            (vec![&one[..]], Ending::Torn { offset: 12 })
        );
    }

    #[test]
    fn damage_followed_by_valid_entries_is_corruption() {
        let (one, two, three) = (payload("one"), payload("two"), payload("three"));
        let mut bytes = frame(&one);
        let second = bytes.len();
        bytes.extend(frame(&two));
        let third = bytes.len();
        bytes.extend(frame(&three));
        // A flipped payload byte, a flipped length byte (longer and shorter): each in the middle.
        for (at, reason) in [
            (second + 9, "an entry whose checksum does not match"),
            (second, "an entry whose checksum does not match"),
            (second + 3, "an entry longer than the rest of the file"),
        ] {
            let mut damaged = bytes.clone();
            damaged[at] ^= if at == second { 0x01 } else { 0x80 };
            let (found, ending) = entries(&damaged);
            assert_eq!(found, vec![&one[..]], "damage at {at}");
            assert_eq!(
                ending,
                Ending::Corrupt {
                    offset: second,
                    next_valid: third,
                    reason
                },
                "damage at {at}"
            );
        }
    }
}
