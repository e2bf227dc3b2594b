//! `membrain export` and `membrain import`: one tenant as JSON lines.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Write};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use membrain_memory::{Limits, TenantId};
use membrain_store::transfer::{export_tenant, import_tenant};

use crate::cli::{ExportArgs, ImportArgs};
use crate::output::say;
use crate::settings::Common;

/// Creates (or truncates) a file only its owner can read: an export holds a tenant's memories.
pub fn private_file(path: &std::path::Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    // The mode above applies only to a new file; an old one keeps its own unless told.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

fn tenant(raw: &str) -> Result<TenantId> {
    TenantId::parse(raw).map_err(|e| anyhow::anyhow!("{}", e.message))
}

pub async fn export(common: &Common, args: ExportArgs) -> Result<()> {
    let tenant = tenant(&args.tenant)?;
    let store = super::open_store(common).await?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BufWriter::new(
            private_file(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let report = export_tenant(store.as_ref(), &tenant, &mut out)
        .await
        .context("exporting")?;
    out.flush()?;
    eprintln!(
        "Exported {} memories and {} links of tenant {tenant}.",
        report.memories, report.links
    );
    store.close().await;
    Ok(())
}

pub async fn import(common: &Common, args: ImportArgs) -> Result<()> {
    let tenant = tenant(&args.tenant)?;
    let (mut input, size): (Box<dyn BufRead>, Option<u64>) = if args.input.as_os_str() == "-" {
        (Box::new(BufReader::new(std::io::stdin().lock())), None)
    } else {
        let file =
            File::open(&args.input).with_context(|| format!("opening {}", args.input.display()))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(BufReader::new(file)), size)
    };
    let store = super::open_store(common).await?;
    let bar = match size {
        Some(size) if std::io::stderr().is_terminal() => {
            let bar = ProgressBar::new(size);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} importing [{bar:40}] {bytes}/{total_bytes} ({eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        }
        _ => ProgressBar::hidden(),
    };
    // The operator imports on a tenant's behalf: histories and tags are cut to the server's
    // limits, but the tenant quotas (which bound what a tenant can do to a shared server) do
    // not refuse a restore.
    let limits = Limits {
        max_memories_per_tenant: usize::MAX,
        max_stored_bytes_per_tenant: usize::MAX,
        ..Limits::default()
    };
    let report = import_tenant(store.as_ref(), &tenant, &mut input, &limits, &mut |bytes| {
        bar.set_position(bytes)
    })
    .await
    .context("importing")?;
    bar.finish_and_clear();
    if args.json {
        say!("{}", serde_json::to_string(&report)?);
    } else {
        say!(
            "Imported into tenant {tenant}: {} created, {} already present, {} merged into duplicates; {} links ({} skipped).",
            report.created,
            report.skipped,
            report.merged,
            report.links,
            report.links_skipped
        );
    }
    store.close().await;
    Ok(())
}
