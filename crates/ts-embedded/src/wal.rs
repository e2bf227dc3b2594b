//! The write-ahead log: segment files `wal-<n>.log` of entries `[length u32][crc32 u32][payload]`.
//! An entry is durable once `append` returns: writers append in turn and share fsyncs (group
//! commit). Replay stops a segment at its first incomplete or corrupt entry: a torn tail.

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

/// The complete entries of a segment's bytes, and whether a torn or corrupt tail followed them.
pub(crate) fn entries(bytes: &[u8]) -> (Vec<&[u8]>, bool) {
    let mut entries = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let Some((header, body)) = rest.split_first_chunk::<HEADER_BYTES>() else {
            return (entries, true);
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if body.len() < len || crc32fast::hash(&body[..len]) != crc {
            return (entries, true);
        }
        entries.push(&body[..len]);
        rest = &body[len..];
    }
    (entries, false)
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

fn create_segment(dir: &Path, segment: u64) -> Result<File, TsError> {
    let path = segment_path(dir, segment);
    let file = OpenOptions::new()
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

    #[test]
    fn a_torn_or_corrupt_tail_keeps_the_entries_before_it() {
        let mut bytes = frame(b"one");
        bytes.extend(frame(b"two"));
        assert_eq!(entries(&bytes), (vec![&b"one"[..], &b"two"[..]], false));
        let whole = bytes.len();
        bytes.extend(frame(b"three"));
        for cut in whole + 1..bytes.len() {
            assert_eq!(entries(&bytes[..cut]).0.len(), 2, "cut at {cut}");
            assert!(entries(&bytes[..cut]).1);
        }
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        assert_eq!(entries(&bytes), (vec![&b"one"[..], &b"two"[..]], true));
    }
}
