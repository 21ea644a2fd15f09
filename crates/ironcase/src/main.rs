//! The `ironcase` binary: parses configuration and dispatches subcommands.
//! It only wires things together; the behaviour lives in the library crates.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};

mod bench;
mod cli;

use ironcase::{config, server};

/// The vocabulary of `ironcase dev seed`, most common word first.
fn seed_words() -> Vec<String> {
    let v = ironcase::seed::Vocabulary::new();
    (0..400).map(|i| v.rank(i).to_owned()).collect()
}

/// The indicator pool of a default seed of `incidents`.
fn seed_pool(incidents: u64) -> u64 {
    ironcase::seed::ioc_pool(incidents, 5)
}

// A server's requests allocate many short-lived strings (rows, JSON): mimalloc
// serves them with less contention and fragmentation than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "ironcase", version, about = "Multi-tenant incident response, in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the server.
    Serve(Box<config::ServeArgs>),
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: cli::AuditCommand,
    },
    /// Prints the role → permission table (Markdown).
    Roles,
    /// Prints every error code with its status and meaning (Markdown).
    ErrorCodes,
    /// Load benchmark: starts a release server on a fresh data dir and drives it.
    Bench(bench::BenchArgs),
    /// Development tools.
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
}

#[derive(Subcommand)]
enum DevCommand {
    /// Fills an organisation with generated incidents, comments and indicators.
    Seed(ironcase::seed::SeedArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The load generator runs on one thread, like `wrk -t1`, so that it takes
    // at most one of the cores it shares with the server it measures.
    let mut builder = if matches!(cli.command, Command::Bench(_)) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Serve(args) => server::run(*args).await,
            Command::Audit { command } => cli::audit(command).await,
            Command::Roles => {
                print!("{}", ironcase_domain::role_table_markdown());
                Ok(std::process::ExitCode::SUCCESS)
            }
            Command::ErrorCodes => {
                print!("{}", ironcase_app::ErrorCode::markdown_table());
                Ok(std::process::ExitCode::SUCCESS)
            }
            Command::Bench(args) => bench::run(args).await,
            Command::Dev { command: DevCommand::Seed(args) } => ironcase::seed::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
