//! The `ironcase` binary: parses configuration and dispatches subcommands.
//! It only wires things together; the behaviour lives in the library crates.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};

mod cli;

use ironcase::{config, server};

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
    Bench(ironcase_dev::bench::BenchArgs),
    /// Development tools.
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
}

#[derive(Subcommand)]
enum DevCommand {
    /// Fills an organisation with generated incidents, comments and indicators.
    Seed(ironcase_dev::seed::SeedArgs),
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
            Command::Bench(args) => ironcase_dev::bench::run(args).await,
            Command::Dev { command: DevCommand::Seed(args) } => {
                let mut cfg = config::Config::for_data_dir(args.data_dir.clone());
                cfg.database_url = args.database_url.clone().map(ironcase_app::shared::SecretUrl::new);
                let (app, password_file) = server::open(&cfg, ironcase_app::Clock::system()).await?;
                ironcase_dev::seed::run(&app, password_file, args).await
            }
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
