//! Offline commands that work on a data directory: they open the store and
//! call the app's functions, as the HTTP handlers call its use cases.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use ironcase_app::audit::{verify_offline, Offline};
use ironcase_app::checkpoints::{verify_export, NoteVerifier};

#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Recomputes every audit chain in the data directory (or database);
    /// with `--export`, verifies an exported log instead: every entry, the
    /// chain, the Merkle tree and each checkpoint's signature. Exits
    /// non-zero when something does not check out, naming the first bad
    /// sequence number.
    Verify {
        #[arg(long, env = "IRONCASE_DATA_DIR", default_value = "ironcase-data")]
        data_dir: PathBuf,
        /// The PostgreSQL database, when the server runs on one
        #[arg(long, env = "IRONCASE_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// An export of `GET /api/v1/audit/export` to verify offline
        #[arg(long, requires = "public_key")]
        export: Option<PathBuf>,
        /// The server's verifier key(s) (`GET /api/v1/audit/public-key`): a
        /// file with one per line (or that answer as JSON), or the key itself
        #[arg(long)]
        public_key: Option<String>,
        /// A checkpoint kept from before (its signed note), which the
        /// export must extend
        #[arg(long, requires = "export")]
        checkpoint: Option<PathBuf>,
    },
}

/// The verifier keys in `arg`: a file (lines, or the public-key answer as
/// JSON) or a key itself.
fn verifier_keys(arg: &str) -> anyhow::Result<Vec<NoteVerifier>> {
    let text = match std::fs::read_to_string(arg) {
        Ok(t) => t,
        Err(_) => arg.to_owned(),
    };
    let lines: Vec<String> = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(v) => v["keys"].as_array().into_iter().flatten().filter_map(|k| k["vkey"].as_str().map(str::to_owned)).collect(),
        Err(_) => text.lines().map(str::to_owned).collect(),
    };
    let keys: Vec<NoteVerifier> = lines.iter().filter(|l| !l.trim().is_empty()).filter_map(|l| NoteVerifier::parse(l)).collect();
    anyhow::ensure!(!keys.is_empty(), "no verifier key in --public-key (expected name+hash+base64, as GET /api/v1/audit/public-key gives)");
    Ok(keys)
}

/// Verifies an exported log, showing progress on a terminal.
fn verify_export_file(export: &std::path::Path, keys: &[NoteVerifier], checkpoint: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let extra = match checkpoint {
        Some(p) => Some(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let file = std::fs::File::open(export).with_context(|| format!("opening {}", export.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = indicatif::ProgressBar::new(len).with_style(
        indicatif::ProgressStyle::with_template("verifying {bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let reader = std::io::BufReader::with_capacity(1 << 20, bar.wrap_read(file));
    let r = verify_export(reader, keys, extra.as_deref()).map_err(|e| anyhow::anyhow!("{}: {e}", export.display()))?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let line = serde_json::json!({
        "tenant": r.tenant, "ok": r.ok, "pruned": r.pruned, "entries": r.entries, "head": r.head, "checkpoints": r.checkpoints,
        "proven_by_checkpoint": r.proven, "personal_parts": r.personal, "personal_parts_erased": r.erased,
        "first_bad_seq": r.first_bad_seq, "reason": r.reason,
        "entries_per_second": (r.entries as f64 / secs.max(1e-9)).round(),
    });
    println!("{line}");
    Ok(if r.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

pub async fn audit(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify { export: Some(export), public_key, checkpoint, .. } => {
            let keys = verifier_keys(public_key.as_deref().unwrap_or(""))?;
            verify_export_file(&export, &keys, checkpoint.as_deref())
        }
        AuditCommand::Verify { data_dir, database_url, .. } => {
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
