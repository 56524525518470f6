//! Master key rotation while servers run: counts stored secrets by the key that sealed them, and
//! seals every one still under another key again under the primary, in small batches of
//! compare-and-swap updates, so a secret a running server saves meanwhile is never overwritten.
//! What `wagate keys status` and `wagate keys rotate` run.

use std::collections::{BTreeMap, HashSet};

use clap::{Args, Subcommand};
use serde::Serialize;

use crate::config::Settings;
use crate::store::secrets::{SEALED_COLUMNS, SealedColumn, SealedSwap};
use crate::store::{Store, StoreError};
use crate::vault::{KeyId, SecretSlot, Vault, VaultError};

/// Rows per page and per transaction unless `--batch-size` says otherwise.
pub const DEFAULT_BATCH_SIZE: u32 = 100;

const ROTATE_HELP: &str = "\
Seals every stored secret still under an older master key again under WAGATE_MASTER_KEY, while
servers keep running: connections' access tokens, app secrets and verify tokens, tenant webhook
signing secrets, and the assistant's model keys.

To rotate the master key:

  1. Restart every wagate process, one at a time, with WAGATE_MASTER_KEY=<new key> and
     WAGATE_PREVIOUS_MASTER_KEYS=<old key>. New secrets are sealed with the new key; old ones
     still open.
  2. Run `wagate keys rotate` with the same settings. It re-seals in small batches, and writes a
     row only if it still holds what was read, so a secret a running server saves meanwhile is
     never overwritten. Progress goes to stderr, one JSON summary line to stdout. It can be
     interrupted and run again.
  3. When it reports \"left_under_other_keys\": 0 (and `wagate keys status` shows only the
     primary key id), remove the old key from WAGATE_PREVIOUS_MASTER_KEYS and restart the
     processes again.

A new key is base64 of 32 random bytes, e.g. `openssl rand -base64 32`. Several previous keys are
separated by commas. A secret under a key not given is reported with its key id and left as it
is, the others go on, and the exit status is then non-zero; so is it when a process still running
with the old key as WAGATE_MASTER_KEY wrote secrets meanwhile (restart it and run this again).

When WAGATE_MASTER_KEY is unset the master key is the generated file master.key in the data
dir; rotation needs an explicit new key: set WAGATE_MASTER_KEY to a new key and
WAGATE_PREVIOUS_MASTER_KEYS to that file's contents, and follow the steps.";

/// `wagate keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Counts of stored secrets per key id (ids only, never keys) and which id is primary; one
    /// JSON line on stdout.
    Status(KeysArgs),
    /// Seals every stored secret still under an older key again under WAGATE_MASTER_KEY, while
    /// servers run; one JSON summary line on stdout.
    #[command(long_about = ROTATE_HELP)]
    Rotate(KeysArgs),
}

#[derive(Debug, Args)]
pub struct KeysArgs {
    /// Rows read and written per transaction; small, so running servers barely wait for it.
    #[arg(long, default_value_t = DEFAULT_BATCH_SIZE, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch_size: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error(
        "WAGATE_MASTER_KEY is unset, so the master key is the generated key file {path}; rotation \
         needs an explicit new key: set WAGATE_MASTER_KEY to a new one (base64 of 32 random bytes) \
         and WAGATE_PREVIOUS_MASTER_KEYS to that file's contents, restart every process with both, \
         then run `wagate keys rotate` with the same settings"
    )]
    KeyFileIsPrimary { path: String },
    #[error(
        "{left} stored secrets are still under keys other than the primary {by_key}; add any key \
         reported as missing to WAGATE_PREVIOUS_MASTER_KEYS, restart any process still running \
         with an old WAGATE_MASTER_KEY, and run `wagate keys rotate` again"
    )]
    SecretsLeft { left: u64, by_key: String },
}

/// Where the primary key came from, for `keys status`.
#[derive(Debug, Serialize)]
struct StatusOutput {
    #[serde(flatten)]
    status: KeyStatus,
    /// `"WAGATE_MASTER_KEY"` or `"key_file"`.
    primary_key_from: &'static str,
}

/// Runs `wagate keys status` or `wagate keys rotate`.
pub async fn run(settings: Settings, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Status(args) => {
            let vault = load_vault(&settings)?;
            let store = crate::cli::open_store(&settings).await?;
            let counted = status(&store, &vault, args.batch_size as usize).await;
            store.close().await;
            let status = counted?;
            if !status.unknown_key_ids.is_empty() {
                eprintln!(
                    "keys status: secrets under key ids {} do not open with these settings; give \
                     their keys in WAGATE_PREVIOUS_MASTER_KEYS",
                    status.unknown_key_ids.join(", ")
                );
            }
            let output = StatusOutput {
                status,
                primary_key_from: if settings.master_key.is_some() {
                    "WAGATE_MASTER_KEY"
                } else {
                    "key_file"
                },
            };
            println!("{}", serde_json::to_string(&output)?);
            Ok(())
        }
        KeysCommand::Rotate(args) => {
            if settings.master_key.is_none() {
                return Err(KeysError::KeyFileIsPrimary {
                    path: crate::vault::key_file_path(&settings.data_dir)
                        .display()
                        .to_string(),
                }
                .into());
            }
            let vault = load_vault(&settings)?;
            let store = crate::cli::open_store(&settings).await?;
            let rotated = rotate(&store, &vault, args.batch_size as usize, |line| {
                eprintln!("keys rotate: {line}");
            })
            .await;
            store.close().await;
            let report = rotated?;
            println!("{}", serde_json::to_string(&report)?);
            if report.left_under_other_keys > 0 {
                let mut left = report.by_key_after.clone();
                left.remove(&report.primary_key_id);
                return Err(KeysError::SecretsLeft {
                    left: report.left_under_other_keys,
                    by_key: describe(&left),
                }
                .into());
            }
            eprintln!(
                "keys rotate: done; no stored secret is left under an old key, so the old keys can \
                 be removed from WAGATE_PREVIOUS_MASTER_KEYS"
            );
            Ok(())
        }
    }
}

fn load_vault(settings: &Settings) -> Result<Vault, VaultError> {
    Vault::load(
        settings.master_key.as_ref(),
        settings.previous_master_keys.as_ref(),
        &settings.data_dir,
    )
}
/// How often one row is tried again after a running server changed it between read and write.
const MAX_ATTEMPTS_PER_ROW: usize = 3;
/// Rows named one by one on the progress output before the rest are only counted.
const MAX_ROWS_NAMED: usize = 20;

/// Stored secrets counted by the key that sealed them (key ids only, never keys).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct KeyStatus {
    /// The key new secrets are sealed with.
    pub primary_key_id: String,
    /// Stored secrets per key id, the primary included.
    pub by_key: BTreeMap<String, u64>,
    /// Key ids that stored secrets name but this process has no key for.
    pub unknown_key_ids: Vec<String>,
    /// Values that are not sealed secrets at all (damaged, or written by something else).
    pub malformed: u64,
    pub total: u64,
    /// Secrets under any key but the primary (the unknown ones and the malformed included).
    pub under_other_keys: u64,
}

/// What `rotate` did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RotationReport {
    pub primary_key_id: String,
    /// Secrets sealed again under the primary key by this run.
    pub resealed: u64,
    /// Secrets this run found under the primary key already.
    pub already_current: u64,
    /// Rows a running server changed between this run's read and write, left as the server wrote them.
    pub changed_meanwhile: u64,
    /// Secrets that could not be opened (under a key this process lacks, damaged, or moved).
    pub unreadable: u64,
    pub by_key_before: BTreeMap<String, u64>,
    pub by_key_after: BTreeMap<String, u64>,
    /// Secrets still under another key at the end: zero means the old keys can be dropped.
    pub left_under_other_keys: u64,
}

/// Counts every stored secret by the key id it names.
#[tracing::instrument(skip_all)]
pub async fn status(
    store: &Store,
    vault: &Vault,
    batch_size: usize,
) -> Result<KeyStatus, StoreError> {
    let primary = vault.primary_key_id();
    let mut status = KeyStatus {
        primary_key_id: primary.to_string(),
        ..KeyStatus::default()
    };
    let mut unknown = HashSet::new();
    for column in SEALED_COLUMNS {
        let mut after = String::new();
        loop {
            let page = store
                .sealed_values(column, &after, page_limit(batch_size))
                .await?;
            for value in &page {
                status.total += 1;
                match KeyId::of(&value.sealed) {
                    Some(id) => {
                        *status.by_key.entry(id.to_string()).or_default() += 1;
                        if id != primary {
                            status.under_other_keys += 1;
                            if !vault.has_key(id) {
                                unknown.insert(id);
                            }
                        }
                    }
                    None => {
                        status.malformed += 1;
                        status.under_other_keys += 1;
                    }
                }
            }
            match page.last() {
                Some(last) if page.len() >= batch_size.max(1) => after.clone_from(&last.row_id),
                _ => break,
            }
        }
    }
    let mut unknown: Vec<String> = unknown.iter().map(KeyId::to_string).collect();
    unknown.sort();
    status.unknown_key_ids = unknown;
    Ok(status)
}

/// Seals every stored secret that is not under the primary key again under it, `batch_size`
/// rows per transaction. Each row is written only if it still holds what was read; a row changed
/// meanwhile is read again and retried a few times. Secrets that do not open are reported through
/// `progress` and counted, and the rest go on. Safe to interrupt and to run again.
#[tracing::instrument(skip_all)]
pub async fn rotate(
    store: &Store,
    vault: &Vault,
    batch_size: usize,
    progress: impl FnMut(String),
) -> Result<RotationReport, StoreError> {
    let batch_size = batch_size.max(1);
    let mut out = Reporter {
        progress,
        unreadable_named: 0,
    };
    let before = status(store, vault, batch_size).await?;
    let to_do = before.under_other_keys;
    out.line(format!(
        "primary key id {}; {to_do} of {} stored secrets are under other keys {}",
        before.primary_key_id,
        before.total,
        describe(&before.by_key)
    ));
    let mut report = RotationReport {
        primary_key_id: before.primary_key_id,
        by_key_before: before.by_key,
        ..RotationReport::default()
    };
    for column in SEALED_COLUMNS {
        let mut after = String::new();
        let mut changed = Vec::new();
        loop {
            let page = store
                .sealed_values(column, &after, page_limit(batch_size))
                .await?;
            let mut swaps = Vec::new();
            for value in &page {
                let slot = SecretSlot::new(column.table, column.column, &value.row_id);
                match vault.reseal(slot, &value.sealed) {
                    Ok(None) => report.already_current += 1,
                    Ok(Some(replacement)) => swaps.push(SealedSwap {
                        row_id: value.row_id.clone(),
                        expected: value.sealed.clone(),
                        replacement,
                    }),
                    Err(error) => {
                        report.unreadable += 1;
                        out.unreadable(column, &value.row_id, &error);
                    }
                }
            }
            if !swaps.is_empty() {
                let applied = store.swap_sealed_values(column, &swaps).await?;
                let mut resealed = 0;
                for (swap, done) in swaps.into_iter().zip(applied) {
                    if done {
                        resealed += 1;
                    } else {
                        changed.push(swap.row_id);
                    }
                }
                report.resealed += resealed;
                out.line(format!(
                    "{column}: resealed {resealed} ({} of {to_do} so far)",
                    report.resealed
                ));
            }
            match page.last() {
                Some(last) if page.len() >= batch_size => after.clone_from(&last.row_id),
                _ => break,
            }
        }
        for row_id in changed {
            report.changed_meanwhile += 1;
            match reseal_changed_row(store, vault, column, &row_id).await? {
                Retried::Resealed => report.resealed += 1,
                Retried::Current | Retried::Gone => {}
                Retried::StillChanging => out.line(format!(
                    "{column} row {row_id}: changed on every attempt; run again to finish it"
                )),
                Retried::Unreadable(error) => {
                    report.unreadable += 1;
                    out.unreadable(column, &row_id, &error);
                }
            }
        }
    }
    let after = status(store, vault, batch_size).await?;
    report.left_under_other_keys = after.under_other_keys;
    report.by_key_after = after.by_key;
    Ok(report)
}

/// Progress lines, with the secrets that do not open named only up to a point.
struct Reporter<F> {
    progress: F,
    unreadable_named: usize,
}

impl<F: FnMut(String)> Reporter<F> {
    fn line(&mut self, line: String) {
        (self.progress)(line);
    }

    fn unreadable(&mut self, column: SealedColumn, row_id: &str, error: &VaultError) {
        self.unreadable_named += 1;
        if self.unreadable_named <= MAX_ROWS_NAMED {
            self.line(format!("{column} row {row_id}: {error}"));
        } else if self.unreadable_named == MAX_ROWS_NAMED + 1 {
            self.line("more secrets do not open; they are only counted from here on".into());
        }
    }
}

/// How a row that changed under a compare-and-swap ended.
enum Retried {
    Resealed,
    /// A running server saved a new secret under the primary key: nothing left to do.
    Current,
    /// Wiped meanwhile (a connection disconnected, an endpoint deleted).
    Gone,
    StillChanging,
    Unreadable(VaultError),
}

/// Reads a row that changed under a swap again and retries it a few times.
async fn reseal_changed_row(
    store: &Store,
    vault: &Vault,
    column: SealedColumn,
    row_id: &str,
) -> Result<Retried, StoreError> {
    for _ in 0..MAX_ATTEMPTS_PER_ROW {
        let Some(sealed) = store.sealed_value(column, row_id).await? else {
            return Ok(Retried::Gone);
        };
        let slot = SecretSlot::new(column.table, column.column, row_id);
        let replacement = match vault.reseal(slot, &sealed) {
            Ok(None) => return Ok(Retried::Current),
            Ok(Some(replacement)) => replacement,
            Err(error) => return Ok(Retried::Unreadable(error)),
        };
        let swap = SealedSwap {
            row_id: row_id.to_owned(),
            expected: sealed,
            replacement,
        };
        if store
            .swap_sealed_values(column, std::slice::from_ref(&swap))
            .await?
            .first()
            .copied()
            .unwrap_or(false)
        {
            return Ok(Retried::Resealed);
        }
    }
    Ok(Retried::StillChanging)
}

fn page_limit(batch_size: usize) -> i64 {
    i64::try_from(batch_size.max(1)).unwrap_or(i64::MAX)
}

/// `(id: n, id: n)`, or nothing when there are no secrets.
fn describe(by_key: &BTreeMap<String, u64>) -> String {
    if by_key.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = by_key.iter().map(|(id, n)| format!("{id}: {n}")).collect();
    format!("({})", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::store_with_tenant;
    use crate::store::webhook_endpoints::EndpointRow;
    use secrecy::ExposeSecret;

    const A: [u8; 32] = [1; 32];
    const B: [u8; 32] = [2; 32];
    const C: [u8; 32] = [3; 32];

    fn endpoint_slot(id: &str) -> SecretSlot<'_> {
        SecretSlot::new("webhook_endpoints", "secret", id)
    }

    async fn add_endpoint(store: &Store, vault: &Vault, id: &str) {
        let row = EndpointRow {
            id: id.to_owned(),
            tenant_id: "t1".into(),
            url: "https://crm.example/hook".into(),
            description: None,
            events: vec!["message.created".into()],
            secret: vault.seal(endpoint_slot(id), &format!("whsec_{id}")),
            enabled: true,
            disabled_reason: None,
            failing_since: None,
            created_at: 1,
            updated_at: 1,
        };
        store.insert_webhook_endpoint(&row).await.unwrap();
    }

    const ENDPOINT_SECRET: SealedColumn = SEALED_COLUMNS[3];

    async fn endpoint_secret(store: &Store, id: &str) -> Vec<u8> {
        store
            .sealed_value(ENDPOINT_SECRET, id)
            .await
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn rotation_reseals_old_secrets_in_batches_skips_current_ones_and_reports_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_tenant(dir.path()).await;
        let (under_a, under_b, under_c) = (
            Vault::new(&A, &[]),
            Vault::new(&B, &[]),
            Vault::new(&C, &[]),
        );
        for i in 0..7 {
            add_endpoint(&store, &under_a, &format!("a{i}")).await;
        }
        add_endpoint(&store, &under_b, "b0").await;
        add_endpoint(&store, &under_c, "c0").await;

        // B primary, A previous; C is a key this process does not have.
        let rotating = Vault::new(&B, &[A]);
        let before = status(&store, &rotating, 3).await.unwrap();
        assert_eq!(before.total, 9);
        assert_eq!(before.under_other_keys, 8);
        assert_eq!(before.by_key[&under_a.primary_key_id().to_string()], 7);
        assert_eq!(
            before.unknown_key_ids,
            vec![under_c.primary_key_id().to_string()]
        );

        let mut lines = Vec::new();
        let report = rotate(&store, &rotating, 3, |line| lines.push(line))
            .await
            .unwrap();
        assert_eq!(report.resealed, 7);
        assert_eq!(report.already_current, 1);
        assert_eq!(report.unreadable, 1);
        assert_eq!(report.left_under_other_keys, 1, "{report:?}");
        let b_id = rotating.primary_key_id().to_string();
        assert_eq!(report.by_key_after[&b_id], 8);
        let unknown_line = lines
            .iter()
            .find(|l| l.contains("row c0"))
            .expect("the unknown key is reported");
        assert!(
            unknown_line.contains("WAGATE_PREVIOUS_MASTER_KEYS"),
            "{unknown_line}"
        );
        assert!(
            lines.iter().filter(|l| l.contains("resealed")).count() >= 3,
            "batches of 3: {lines:?}"
        );

        // The resealed secrets open with B alone, each still only in its own row.
        let only_b = Vault::new(&B, &[]);
        for i in 0..7 {
            let id = format!("a{i}");
            let sealed = endpoint_secret(&store, &id).await;
            let opened = only_b.open(endpoint_slot(&id), &sealed).unwrap();
            assert_eq!(opened.expose_secret(), format!("whsec_{id}"));
        }

        // Running again changes nothing.
        let again = rotate(&store, &rotating, 3, |_| {}).await.unwrap();
        assert_eq!(again.resealed, 0);
        assert_eq!(again.already_current, 8);
        assert_eq!(again.left_under_other_keys, 1);

        // With C given too, the last one moves and nothing is left.
        let complete = Vault::new(&B, &[A, C]);
        let last = rotate(&store, &complete, 3, |_| {}).await.unwrap();
        assert_eq!((last.resealed, last.unreadable), (1, 0));
        assert_eq!(last.left_under_other_keys, 0);
        assert!(
            status(&store, &complete, 3)
                .await
                .unwrap()
                .unknown_key_ids
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_swap_whose_row_changed_since_it_was_read_leaves_the_new_value() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_tenant(dir.path()).await;
        let under_a = Vault::new(&A, &[]);
        add_endpoint(&store, &under_a, "e1").await;
        let read = endpoint_secret(&store, "e1").await;

        // A running server saves a new secret (under B) after the rotation read the row.
        let server = Vault::new(&B, &[A]);
        let saved_by_server = server.seal(endpoint_slot("e1"), "whsec_new");
        assert!(
            store
                .set_webhook_secret("t1", "e1", &saved_by_server, 2)
                .await
                .unwrap()
        );
        let stale = SealedSwap {
            row_id: "e1".into(),
            replacement: server.reseal(endpoint_slot("e1"), &read).unwrap().unwrap(),
            expected: read,
        };
        let applied = store
            .swap_sealed_values(ENDPOINT_SECRET, &[stale])
            .await
            .unwrap();
        assert_eq!(applied, vec![false]);
        let now = endpoint_secret(&store, "e1").await;
        assert_eq!(now, saved_by_server);
        assert_eq!(
            server
                .open(endpoint_slot("e1"), &now)
                .unwrap()
                .expose_secret(),
            "whsec_new"
        );
    }

    #[tokio::test]
    async fn a_row_changed_under_a_swap_is_read_again_and_resealed_or_left_as_the_server_wrote_it()
    {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_tenant(dir.path()).await;
        let rotating = Vault::new(&B, &[A]);
        add_endpoint(&store, &Vault::new(&A, &[]), "old").await;
        add_endpoint(&store, &rotating, "new").await;
        assert!(matches!(
            reseal_changed_row(&store, &rotating, ENDPOINT_SECRET, "old")
                .await
                .unwrap(),
            Retried::Resealed
        ));
        let resealed = endpoint_secret(&store, "old").await;
        assert_eq!(KeyId::of(&resealed), Some(rotating.primary_key_id()));
        assert!(matches!(
            reseal_changed_row(&store, &rotating, ENDPOINT_SECRET, "new")
                .await
                .unwrap(),
            Retried::Current
        ));
        assert!(matches!(
            reseal_changed_row(&store, &rotating, ENDPOINT_SECRET, "deleted")
                .await
                .unwrap(),
            Retried::Gone
        ));
    }
}
