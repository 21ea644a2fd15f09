//! Offline commands that work on a data directory: they open the store and
//! call the app's functions, as the HTTP handlers call its use cases.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use ironcase_app::audit::{verify_offline, Offline};

#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Recomputes every audit chain; exits non-zero when one is broken.
    Verify {
        #[arg(long, env = "IRONCASE_DATA_DIR", default_value = "ironcase-data")]
        data_dir: PathBuf,
        /// The PostgreSQL database, when the server runs on one
        #[arg(long, env = "IRONCASE_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
}

pub async fn audit(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify { data_dir, database_url } => {
            let lines = match &database_url {
                Some(url) => verify_offline(Offline::Postgres(url)).await.context("verifying the PostgreSQL database")?,
                None => {
                    let db = data_dir.join("ironcase.db");
                    anyhow::ensure!(db.exists(), "no database at {}", db.display());
                    verify_offline(Offline::Sqlite(&db)).await.context("verifying the database")?
                }
            };
            let mut all_ok = true;
            for v in lines {
                all_ok &= v.ok;
                let line = serde_json::json!({
                    "tenant": v.tenant, "ok": v.ok, "entries": v.entries, "head": v.head,
                    "first_bad_seq": v.first_bad_seq, "reason": v.reason,
                });
                println!("{line}");
            }
            Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}
