//! `ironcase bench`: filled in below.

#[derive(clap::Args, Debug)]
pub struct BenchArgs {}

pub async fn run(_: BenchArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("not yet")
}
