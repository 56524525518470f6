//! `wagate bench ingest` (being written).

use clap::Args;

use crate::config::Settings;

#[derive(Debug, Args)]
pub struct IngestBenchArgs {
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
}

pub async fn ingest(_settings: Settings, _args: IngestBenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
