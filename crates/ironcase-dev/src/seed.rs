//! `ironcase dev seed`: fills an organisation with realistic incidents for
//! benchmarks and demos. Everything is derived from the incident's number, so
//! two runs produce the same data and the benchmark can name words, indicators
//! and incidents that exist without reading them back.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use ironcase_app::store::bulk::SeedIncident;
use ironcase_app::store::incident::{CommentRow, IncidentRow};
use ironcase_domain::ioc::IocType;
use ironcase_domain::{Category, CommentId, IncidentId, OrgId, Severity, Status, Timestamp, Tlp, UserId};

#[derive(clap::Args, Debug)]
pub struct SeedArgs {
    /// The data directory to fill (created, with its first organisation, when new).
    #[arg(long, env = "IRONCASE_DATA_DIR", default_value = "ironcase-data")]
    pub data_dir: PathBuf,
    /// Incidents to add.
    #[arg(long, default_value_t = 10_000)]
    pub incidents: u64,
    /// Indicators per incident, drawn from a shared pool so that incidents share them.
    #[arg(long, default_value_t = 5)]
    pub iocs_per_incident: u64,
    /// Comments per incident.
    #[arg(long, default_value_t = 1)]
    pub comments_per_incident: u64,
    /// The organisation to fill, by slug.
    #[arg(long, default_value = "default")]
    pub org: String,
    /// Incidents per write job (several jobs share one commit).
    #[arg(long, default_value_t = 2_000)]
    pub batch: u64,
    /// Audit entries to add to the organisation's chain (for the audit
    /// benchmarks: `bench --audit-proofs`).
    #[arg(long, default_value_t = 0)]
    pub audit_entries: u64,
    /// Fill this PostgreSQL database instead of the data directory's SQLite
    /// one (the data directory still holds the master key).
    #[arg(long, env = "IRONCASE_DATABASE_URL")]
    pub database_url: Option<String>,
}

/// splitmix64: a small, fast, deterministic generator.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Words responders write. The vocabulary is these, then made-up words, drawn
/// with Zipf's law (the n-th most common word n times rarer than the first),
/// as words of real text are.
const CORE: &[&str] = &[
    "the",
    "on",
    "from",
    "host",
    "user",
    "server",
    "account",
    "login",
    "suspicious",
    "activity",
    "alert",
    "traffic",
    "network",
    "file",
    "process",
    "email",
    "malware",
    "phishing",
    "credential",
    "domain",
    "ransomware",
    "encrypted",
    "outbound",
    "connection",
    "firewall",
    "endpoint",
    "detected",
    "blocked",
    "payload",
    "attachment",
    "macro",
    "powershell",
    "script",
    "beacon",
    "command",
    "control",
    "lateral",
    "movement",
    "privilege",
    "escalation",
    "exfiltration",
    "backup",
    "vpn",
    "mfa",
    "password",
    "reset",
    "token",
    "session",
    "admin",
    "database",
    "web",
    "application",
    "vulnerability",
    "exploit",
    "patch",
    "cve",
    "scanner",
    "brute",
    "force",
    "dns",
    "tunnel",
    "proxy",
    "certificate",
    "invoice",
    "vendor",
    "finance",
    "payroll",
    "hr",
    "laptop",
    "workstation",
    "cloud",
    "bucket",
    "storage",
    "public",
    "exposed",
    "key",
    "leaked",
    "repository",
    "github",
    "contractor",
    "insider",
    "terminated",
    "badge",
    "usb",
    "device",
    "mobile",
    "ddos",
    "latency",
    "outage",
    "registry",
    "persistence",
    "scheduled",
    "task",
    "service",
    "dll",
    "injection",
    "memory",
    "dump",
    "lsass",
    "mimikatz",
    "kerberos",
    "ticket",
    "golden",
    "silver",
    "ntlm",
    "relay",
    "smb",
    "rdp",
    "ssh",
    "anomalous",
    "geolocation",
    "impossible",
    "travel",
    "quarantine",
    "isolated",
    "reimaged",
    "contained",
    "eradicated",
    "customer",
    "data",
    "pii",
    "breach",
    "notification",
    "legal",
    "regulator",
    "forensic",
    "timeline",
    "evidence",
    "triage",
    "escalated",
    "soc",
    "analyst",
    "playbook",
    "wiper",
    "loader",
    "dropper",
    "stealer",
    "botnet",
    "spam",
    "spoofed",
    "sender",
    "lookalike",
    "typosquat",
    "homoglyph",
    "qr",
    "sms",
    "voice",
    "callback",
];

/// A made-up but pronounceable word for rank `i` of the long tail.
fn tail_word(i: usize) -> String {
    const SYL: &[&str] = &[
        "ka", "zor", "vex", "lin", "tra", "mor", "qui", "sel", "dra", "pon", "rix", "tal", "ven", "gor", "shi", "lum", "bek", "cyn", "fal",
        "hux",
    ];
    let mut n = i;
    let mut w = String::new();
    for _ in 0..3 {
        w.push_str(SYL[n % SYL.len()]);
        n /= SYL.len();
    }
    if n > 0 {
        w.push_str(&n.to_string());
    }
    w
}

pub struct Vocabulary {
    words: Vec<String>,
    /// Cumulative Zipf weights.
    cumulative: Vec<f64>,
}

impl Vocabulary {
    pub fn new() -> Vocabulary {
        let mut words: Vec<String> = CORE.iter().map(|w| (*w).to_owned()).collect();
        words.extend((0..20_000).map(tail_word));
        let mut cumulative = Vec::with_capacity(words.len());
        let mut sum = 0.0;
        for rank in 1..=words.len() {
            sum += 1.0 / rank as f64;
            cumulative.push(sum);
        }
        Vocabulary { words, cumulative }
    }

    pub fn word(&self, rng: &mut Rng) -> &str {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let x = rng.unit() * total;
        let i = self.cumulative.partition_point(|c| *c < x).min(self.words.len() - 1);
        &self.words[i]
    }

    /// The word of this rank (0 is the most common).
    pub fn rank(&self, i: usize) -> &str {
        &self.words[i.min(self.words.len() - 1)]
    }

    fn sentence(&self, rng: &mut Rng, min: u64, max: u64) -> String {
        let n = min + rng.below(max - min + 1);
        let mut s = String::new();
        for k in 0..n {
            if k > 0 {
                s.push(' ');
            }
            s.push_str(self.word(rng));
        }
        s
    }
}

impl Default for Vocabulary {
    fn default() -> Self {
        Vocabulary::new()
    }
}

/// How many distinct indicators a seed of `incidents` draws from.
pub fn ioc_pool(incidents: u64, per_incident: u64) -> u64 {
    (incidents * per_incident / 4).max(1_000)
}

/// Indicator number `i` of the pool, in normal form.
pub fn ioc_value(i: u64) -> (IocType, String) {
    let mut r = Rng::new(i.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let x = r.next_u64();
    match i % 4 {
        0 => (IocType::Ipv4, format!("{}.{}.{}.{}", 11 + x % 200, (x >> 8) % 256, (x >> 16) % 256, 1 + (x >> 24) % 254)),
        1 => (IocType::Domain, format!("{}-{}.example", tail_word((x % 20_000) as usize), i)),
        2 => {
            let hex: String = (0..4).map(|_| format!("{:016x}", r.next_u64())).collect();
            (IocType::Sha256, hex)
        }
        _ => (IocType::Url, format!("https://cdn-{i}.example/{}/{}.php", tail_word((x % 20_000) as usize), x % 1000)),
    }
}

/// Seeded incidents span the two years before the seed ran.
const SPAN_MS: i64 = 2 * 365 * 24 * 3600 * 1000;

/// Incident `n` (counting from 0) of a seed of `total`, with its comments and indicators.
#[allow(clippy::too_many_arguments)]
pub fn incident(
    vocab: &Vocabulary,
    org: OrgId,
    reporter: UserId,
    n: u64,
    total: u64,
    comments: u64,
    iocs: u64,
    pool: u64,
    now: Timestamp,
) -> SeedIncident {
    const TAGS: &[&str] = &[
        "ransomware",
        "phishing",
        "bec",
        "apt",
        "commodity",
        "insider",
        "cloud",
        "vip",
        "pci",
        "gdpr",
        "hipaa",
        "false-positive",
        "red-team",
        "tabletop",
        "supply-chain",
        "zero-day",
        "ddos",
        "credential-stuffing",
        "mobile",
        "ot",
    ];
    let mut rng = Rng::new(n);
    let created = Timestamp(now.0 - SPAN_MS + (SPAN_MS as f64 * (n as f64 + 0.5) / total.max(1) as f64) as i64);
    let mut tags = Vec::new();
    if rng.unit() < 0.6 {
        tags.push(TAGS[rng.below(TAGS.len() as u64) as usize].to_owned());
    }
    if rng.unit() < 0.2 {
        let t = TAGS[rng.below(TAGS.len() as u64) as usize].to_owned();
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    let tlp = match rng.below(10) {
        0 => Tlp::Clear,
        1..=3 => Tlp::Green,
        4..=8 => Tlp::Amber,
        _ => Tlp::Red,
    };
    let status = [Status::Open, Status::Triaged, Status::InProgress, Status::Contained][rng.below(4) as usize];
    let row = IncidentRow {
        org,
        id: IncidentId::new(),
        number: 0,
        title: vocab.sentence(&mut rng, 4, 8),
        description: vocab.sentence(&mut rng, 20, 40),
        severity: Severity::ALL[rng.below(4) as usize],
        category: Category::ALL[rng.below(Category::ALL.len() as u64) as usize],
        status,
        resolution: None,
        tlp,
        tags,
        assignee_id: None,
        reporter_id: reporter,
        created_at: created,
        updated_at: created,
        acknowledged_at: (status != Status::Open).then_some(created),
        contained_at: (status == Status::Contained).then_some(created),
        resolved_at: None,
        closed_at: None,
        version: 1,
    };
    let comments = (0..comments)
        .map(|k| CommentRow {
            org,
            id: CommentId::new(),
            incident_id: row.id,
            author_id: reporter,
            body: vocab.sentence(&mut rng, 10, 25),
            created_at: Timestamp(created.0 + 60_000 * (k as i64 + 1)),
            author_erased: false,
        })
        .collect();
    // Skewed towards the start of the pool: some indicators recur often, most rarely.
    let iocs = (0..iocs)
        .map(|_| {
            let u = rng.unit();
            ioc_value((u * u * pool as f64) as u64)
        })
        .collect();
    SeedIncident { row, comments, iocs }
}

/// The vocabulary of a seed, most common word first (what `ironcase bench`
/// searches for).
pub fn words() -> Vec<String> {
    let v = Vocabulary::new();
    (0..400).map(|i| v.rank(i).to_owned()).collect()
}

/// Seeds `app` (opened by the binary over `args.data_dir` or
/// `args.database_url`); `password_file` is where a new data directory's
/// first password was written.
pub async fn run(app: &ironcase_app::App, password_file: Option<PathBuf>, args: SeedArgs) -> anyhow::Result<ExitCode> {
    if let Some(p) = password_file {
        println!("new data directory: the password of admin@localhost is in {}", p.display());
    }
    let (org, reporter) = app.seed_target(&args.org).await.with_context(|| format!("no organisation `{}` with an owner", args.org))?;
    let vocab = Vocabulary::new();
    let pool = ioc_pool(args.incidents, args.iocs_per_incident);
    let now = app.clock().now();
    let started = Instant::now();
    let batch = args.batch.max(1);
    let mut done = 0u64;
    let mut next_report = 100_000u64;
    // A few jobs are in flight, so that generating the next batch overlaps
    // with writing this one and the writer can commit them together.
    const IN_FLIGHT: usize = 4;
    let mut pending: std::collections::VecDeque<tokio::task::JoinHandle<ironcase_app::Result<()>>> = Default::default();
    while done < args.incidents {
        let n = batch.min(args.incidents - done);
        let items: Vec<SeedIncident> = (done..done + n)
            .map(|i| incident(&vocab, org, reporter, i, args.incidents, args.comments_per_incident, args.iocs_per_incident, pool, now))
            .collect();
        if pending.len() >= IN_FLIGHT {
            if let Some(p) = pending.pop_front() {
                p.await.context("seed task")??;
            }
        }
        let app2 = app.clone();
        pending.push_back(tokio::spawn(async move { app2.seed_batch(org, reporter, items).await }));
        done += n;
        if done >= next_report {
            let secs = started.elapsed().as_secs_f64();
            println!("{done} incidents in {secs:.1} s ({:.0}/s)", done as f64 / secs);
            next_report += 100_000;
        }
    }
    for p in pending {
        p.await.context("seed task")??;
    }
    if args.audit_entries > 0 {
        let bar = indicatif::ProgressBar::new(args.audit_entries).with_style(
            indicatif::ProgressStyle::with_template("audit entries {bar:40} {pos}/{len} {per_sec} {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let t0 = Instant::now();
        let mut written = 0;
        while written < args.audit_entries {
            let n = 20_000.min(args.audit_entries - written);
            app.seed_audit(org, reporter, written, n).await?;
            written += n;
            bar.set_position(written);
        }
        bar.finish_and_clear();
        println!("{written} audit entries in {:.1} s", t0.elapsed().as_secs_f64());
    }
    app.seed_finished(org, reporter, args.incidents).await?;
    app.store().close().await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "seeded {} incidents ({} comments, {} indicator sightings from a pool of {pool}) into `{}` in {secs:.1} s ({:.0} incidents/s)",
        args.incidents,
        args.incidents * args.comments_per_incident,
        args.incidents * args.iocs_per_incident,
        args.org,
        args.incidents as f64 / secs
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironcase_domain::ioc::normalize;

    #[test]
    fn generated_indicators_are_in_normal_form() {
        for i in 0..2_000 {
            let (kind, value) = ioc_value(i);
            assert_eq!(normalize(kind, &value).as_deref(), Ok(value.as_str()), "{kind} {value}");
        }
    }

    #[test]
    fn the_same_number_gives_the_same_incident() {
        let v = Vocabulary::new();
        let (org, user) = (OrgId::new(), UserId::new());
        let a = incident(&v, org, user, 42, 1000, 1, 5, 1000, Timestamp(1_700_000_000_000));
        let b = incident(&v, org, user, 42, 1000, 1, 5, 1000, Timestamp(1_700_000_000_000));
        assert_eq!((a.row.title, a.iocs), (b.row.title, b.iocs));
    }
}
