//! README.md and DEPLOY.md show each built-in profile's Mermaid diagram between markers
//! (`<!-- diagram:alb -->` … `<!-- /diagram:alb -->`); this test fails when a block differs from
//! what `membrain network plan --format mermaid` prints now.
//!
//! Regenerate the blocks after a change to the renderer or a profile with
//! `MEMBRAIN_UPDATE_DIAGRAMS=1 cargo test --workspace --locked --test diagrams`.

use std::path::{Path, PathBuf};

use membrain_netsec::profiles::Profile;
use membrain_netsec::render::diagram::{DiagramFormat, diagram};

const PROFILES: [Profile; 2] = [Profile::Alb, Profile::Gateway];
const DOCUMENTS: [&str; 2] = ["README.md", "DEPLOY.md"];

fn document(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(name)
}

/// The block a document holds between a profile's markers: the diagram in a mermaid fence.
fn block(profile: Profile) -> String {
    let topology = profile.default_topology();
    format!(
        "```mermaid\n{}```\n",
        diagram(&topology, DiagramFormat::Mermaid)
    )
}

/// `text` with the block between `profile`'s markers replaced by `wanted`, or `None` when the
/// markers are missing.
fn with_block(text: &str, profile: Profile, wanted: &str) -> Option<String> {
    let start = format!("<!-- diagram:{} -->\n", profile.name());
    let end = format!("<!-- /diagram:{} -->", profile.name());
    let begin = text.find(&start)? + start.len();
    let finish = begin + text[begin..].find(&end)?;
    Some(format!("{}{wanted}{}", &text[..begin], &text[finish..]))
}

#[test]
fn documents_show_what_plan_format_mermaid_prints() {
    let update = std::env::var_os("MEMBRAIN_UPDATE_DIAGRAMS").is_some();
    let mut stale = Vec::new();
    for name in DOCUMENTS {
        let path = document(name);
        let text = std::fs::read_to_string(&path).expect("read the document");
        let mut updated = text.clone();
        for profile in PROFILES {
            let Some(next) = with_block(&updated, profile, &block(profile)) else {
                panic!(
                    "{name} lacks the markers <!-- diagram:{0} --> … <!-- /diagram:{0} -->",
                    profile.name()
                );
            };
            updated = next;
        }
        if updated != text {
            if update {
                std::fs::write(&path, &updated).expect("write the document");
            } else {
                stale.push(name);
            }
        }
    }
    assert!(
        stale.is_empty(),
        "the diagrams in {stale:?} differ from what `membrain network plan --format mermaid` \
         prints now; review the change, then regenerate them with\n  \
         MEMBRAIN_UPDATE_DIAGRAMS=1 cargo test --workspace --locked --test diagrams"
    );
}

#[test]
fn a_block_is_replaced_between_its_markers_only() {
    let text = "a\n<!-- diagram:alb -->\nold\n<!-- /diagram:alb -->\nb\n";
    assert_eq!(
        with_block(text, Profile::Alb, "new\n").as_deref(),
        Some("a\n<!-- diagram:alb -->\nnew\n<!-- /diagram:alb -->\nb\n")
    );
    assert_eq!(with_block(text, Profile::Gateway, "new\n"), None);
}
