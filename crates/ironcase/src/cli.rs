//! Offline commands that work on a data directory.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use ironcase_app::store::audit;
use ironcase_app::Store;

#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Recomputes every audit chain; exits non-zero when one is broken.
    Verify {
        #[arg(long, env = "IRONCASE_DATA_DIR", default_value = "ironcase-data")]
        data_dir: PathBuf,
    },
}

pub async fn audit(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify { data_dir } => {
            let db = data_dir.join("ironcase.db");
            anyhow::ensure!(db.exists(), "no database at {}", db.display());
            let raw = Store::open_readonly(&db).context("opening the database")?;
            let c = ironcase_app::store::Conn::Sqlite(&raw);
            let mut all_ok = true;
            for tenant in audit::tenants(&c)? {
                let v = audit::verify(&c, &tenant)?;
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
