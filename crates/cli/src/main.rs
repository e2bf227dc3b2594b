//! The `membrain` binary: parses arguments, sets up logging, and calls into the library crates.
//! No Membrain behaviour lives here beyond wiring.

mod cli;
mod commands;
mod output;
mod settings;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of the system allocator: a request allocates many small buffers across
/// threads, where glibc's malloc showed up as a fifth of the bridge's CPU time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use crate::cli::{Cli, Command, LogFormat, Transport};
use crate::telemetry::LogTarget;

fn main() -> ExitCode {
    one_core_per_model_call();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// candle splits every matrix product of the embedding model over all cores unless
/// `RAYON_NUM_THREADS` says otherwise, and it reads only that variable. MiniLM's products are
/// small: splitting costs more than it gains, and concurrent calls (two ingest workers, several
/// searches) fight for the same cores. Measured on 2 cores: ingest 98 → 181 memories/s, a query
/// 9.1 → 8.8 ms, 100k-memory hybrid search p50 12.1 → 11.4 ms and, at 4 clients, 31.7 → 26.3 ms.
/// Setting the variable needs `unsafe` in this edition, so when it is unset the binary starts
/// itself again with it (exec keeps the process id; nothing has started yet). A value the
/// operator set is kept.
fn one_core_per_model_call() {
    const VARIABLE: &str = "RAYON_NUM_THREADS";
    if std::env::var_os(VARIABLE).is_some() {
        return;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        if let Ok(exe) = std::env::current_exe() {
            let error = std::process::Command::new(exe)
                .args(std::env::args_os().skip(1))
                .env(VARIABLE, "1")
                .exec();
            // Only reached when exec failed: run as we are, just slower to embed.
            eprintln!("note: could not restart with {VARIABLE}=1 ({error}); continuing");
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let shutdown = commands::servers::shutdown_on_signal();
    let file = settings::FileConfig::load(cli.global.config.as_deref())?;
    let common = settings::Common::resolve(&cli.global, &file)?;
    // Servers log JSON by default (production); `serve` is run by a person at a terminal.
    let (default_format, target) = match &cli.command {
        Command::Serve(_) => (LogFormat::Pretty, LogTarget::Stdout),
        Command::Api(_) => (LogFormat::Json, LogTarget::Stdout),
        // stdout carries the protocol: logs must not touch it.
        Command::Mcp(args) if args.transport.or(file.mcp.transport) == Some(Transport::Stdio) => {
            (LogFormat::Json, LogTarget::Stderr)
        }
        Command::Mcp(_) => (LogFormat::Json, LogTarget::Stdout),
        // Lambda sends stdout to CloudWatch Logs.
        Command::Authorizer => (LogFormat::Json, LogTarget::Stdout),
        // Command output goes to stdout; their logs (warnings only by default) to stderr.
        _ => (LogFormat::Pretty, LogTarget::Stderr),
    };
    let level = match &cli.command {
        Command::Keys(_)
        | Command::Export(_)
        | Command::Import(_)
        | Command::Model(_)
        | Command::Ts(_)
        | Command::Database(_)
            if cli.global.log_level.is_none() =>
        {
            "warn"
        }
        _ => common.log_level.as_str(),
    };
    let service = match &cli.command {
        Command::Serve(_) => Some("membrain"),
        Command::Api(_) => Some("membrain-api"),
        Command::Mcp(_) => Some("membrain-mcp"),
        _ => None,
    };
    let telemetry = telemetry::init(
        level,
        common.log_format.unwrap_or(default_format),
        target,
        service,
    )?;

    let result = match cli.command {
        Command::Serve(args) => {
            let semantic = settings::semantic(&args.semantic, &file)?;
            let time_series = settings::time_series(&args.time_series, &file, &common)?;
            commands::serve::run(
                &common,
                settings::serve(&args, &file)?,
                &semantic,
                &time_series,
                &args,
                shutdown,
            )
            .await
        }
        Command::Api(args) => {
            let key = settings::configured_key(args.tuning.api_key.as_deref())?;
            let semantic = settings::semantic(&args.semantic, &file)?;
            let time_series = settings::time_series(&args.time_series, &file, &common)?;
            commands::servers::run_api(
                &common,
                settings::api(&args, &file)?,
                &semantic,
                &time_series,
                key,
                &args.metrics,
                settings::console(&args.console)?,
                shutdown,
            )
            .await
        }
        Command::Mcp(args) => {
            commands::servers::run_mcp(
                settings::mcp(&args, &file, &common)?,
                &args.metrics,
                shutdown,
            )
            .await
        }
        Command::Keys(command) => commands::keys::run(&common, command).await,
        Command::Export(args) => commands::transfer::export(&common, args).await,
        Command::Import(args) => commands::transfer::import(&common, args).await,
        Command::Network(command) => commands::network::run(command).await,
        Command::Model(command) => commands::model::run(&common, command).await,
        Command::Ts(args) => commands::timeseries::run(args, shutdown).await,
        Command::Database(command) => commands::database::run(command).await,
        Command::Authorizer => commands::servers::run_authorizer().await,
    };
    // The last spans (the shutdown's) are exported before the process ends.
    telemetry.shutdown().await;
    result
}
