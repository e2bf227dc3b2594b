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
        // Command output goes to stdout; their logs (warnings only by default) to stderr.
        _ => (LogFormat::Pretty, LogTarget::Stderr),
    };
    let level = match &cli.command {
        Command::Keys(_) | Command::Export(_) | Command::Import(_) | Command::Model(_)
            if cli.global.log_level.is_none() =>
        {
            "warn"
        }
        _ => common.log_level.as_str(),
    };
    telemetry::init(level, common.log_format.unwrap_or(default_format), target)?;

    match cli.command {
        Command::Serve(args) => {
            let semantic = settings::semantic(&args.semantic, &file)?;
            commands::serve::run(
                &common,
                settings::serve(&args, &file)?,
                &semantic,
                &args,
                shutdown,
            )
            .await
        }
        Command::Api(args) => {
            let key = settings::configured_key(args.tuning.api_key.as_deref())?;
            let semantic = settings::semantic(&args.semantic, &file)?;
            commands::servers::run_api(
                &common,
                settings::api(&args, &file)?,
                &semantic,
                key,
                shutdown,
            )
            .await
        }
        Command::Mcp(args) => {
            commands::servers::run_mcp(settings::mcp(&args, &file)?, shutdown).await
        }
        Command::Keys(command) => commands::keys::run(&common, command).await,
        Command::Export(args) => commands::transfer::export(&common, args).await,
        Command::Import(args) => commands::transfer::import(&common, args).await,
        Command::Network(command) => commands::network::run(command).await,
        Command::Model(command) => commands::model::run(&common, command).await,
    }
}
