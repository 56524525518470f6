//! Settings from the environment and flags, checked once at start so nothing later has to doubt them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use secrecy::SecretString;
use url::Url;

use crate::limits::PerMinute;

/// The settings every command reads. Each is an environment variable and a flag of the same meaning.
#[derive(Debug, Clone, Args)]
pub struct SettingsArgs {
    /// Address the server binds.
    #[arg(
        long,
        env = "WAGATE_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: String,

    /// Embedded database, stored media and the generated key file live here.
    #[arg(
        long,
        env = "WAGATE_DATA_DIR",
        default_value = "./wagate-data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// `sqlite://…` or `postgres://…`; default `sqlite://$WAGATE_DATA_DIR/wagate.db`.
    #[arg(long, env = "WAGATE_DATABASE_URL", global = true)]
    pub database_url: Option<String>,

    /// When set, rate limits and live events are shared across processes through Redis.
    #[arg(long, env = "WAGATE_REDIS_URL", global = true)]
    pub redis_url: Option<String>,

    /// Base64 of 32 bytes that encrypts stored secrets. Unset: a key file is generated in the data dir.
    #[arg(long, env = "WAGATE_MASTER_KEY", hide_env_values = true, global = true)]
    pub master_key: Option<SecretString>,

    /// Earlier master keys (comma-separated base64), kept only to read secrets written under them.
    #[arg(
        long,
        env = "WAGATE_PREVIOUS_MASTER_KEYS",
        hide_env_values = true,
        global = true
    )]
    pub previous_master_keys: Option<SecretString>,

    /// Base of generated webhook URLs; default `http://$WAGATE_LISTEN`.
    #[arg(long, env = "WAGATE_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// Where Graph API calls go.
    #[arg(
        long,
        env = "WAGATE_GRAPH_API_BASE",
        default_value = "https://graph.facebook.com",
        global = true
    )]
    pub graph_api_base: String,

    /// Graph API version used in request paths.
    #[arg(
        long,
        env = "WAGATE_GRAPH_API_VERSION",
        default_value = "v24.0",
        global = true
    )]
    pub graph_api_version: String,

    /// App secret of a platform-owned Meta app, for the shared `/webhooks/whatsapp` URL.
    #[arg(
        long,
        env = "WAGATE_META_APP_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub meta_app_secret: Option<SecretString>,

    /// Verify token of the shared `/webhooks/whatsapp` URL.
    #[arg(
        long,
        env = "WAGATE_META_VERIFY_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub meta_verify_token: Option<SecretString>,

    /// Seconds a Graph API call may take before it is given up.
    #[arg(
        long,
        env = "WAGATE_GRAPH_TIMEOUT_SECS",
        default_value_t = 15,
        global = true
    )]
    pub graph_timeout_secs: u64,

    /// Send attempts for rate limits and temporary errors before a message fails.
    #[arg(
        long,
        env = "WAGATE_SEND_MAX_ATTEMPTS",
        default_value_t = 3,
        global = true
    )]
    pub send_max_attempts: u32,

    /// Seconds to wait for Meta to confirm a send whose call timed out before it is failed.
    #[arg(
        long,
        env = "WAGATE_SEND_OUTCOME_GRACE_SECS",
        default_value_t = 120,
        global = true
    )]
    pub send_outcome_grace_secs: u64,

    /// Seconds a background job is held by the process that took it; if that process dies, the
    /// job is taken again after this long. Must exceed the longest job (a Graph call's timeout).
    #[arg(
        long,
        env = "WAGATE_JOB_LEASE_SECS",
        default_value_t = 60,
        global = true
    )]
    pub job_lease_secs: u64,

    /// Seconds between the automatic re-syncs of each connection's templates with Meta (0: never;
    /// `POST /api/v1/templates/sync` still works).
    #[arg(
        long,
        env = "WAGATE_TEMPLATE_SYNC_SECS",
        default_value_t = 900,
        global = true
    )]
    pub template_sync_secs: u64,

    /// Attempts at fetching a file a customer sent before it is marked failed.
    #[arg(
        long,
        env = "WAGATE_MEDIA_FETCH_ATTEMPTS",
        default_value_t = 3,
        global = true
    )]
    pub media_fetch_attempts: u32,

    /// The largest file a customer sent that is fetched and kept, in bytes.
    #[arg(
        long,
        env = "WAGATE_MEDIA_MAX_BYTES",
        default_value_t = 100 * 1024 * 1024,
        global = true
    )]
    pub media_max_bytes: u64,

    /// Attempts at delivering one event to a tenant's webhook endpoint before it is failed.
    #[arg(
        long,
        env = "WAGATE_HOOKS_MAX_ATTEMPTS",
        default_value_t = 12,
        global = true
    )]
    pub hooks_max_attempts: u32,

    /// Milliseconds before the first retry of a webhook delivery; each retry waits about twice as long.
    #[arg(
        long,
        env = "WAGATE_HOOKS_FIRST_BACKOFF_MS",
        default_value_t = 10_000,
        global = true
    )]
    pub hooks_first_backoff_ms: u64,

    /// The longest wait between two attempts of a webhook delivery, in seconds.
    #[arg(
        long,
        env = "WAGATE_HOOKS_MAX_BACKOFF_SECS",
        default_value_t = 3600,
        global = true
    )]
    pub hooks_max_backoff_secs: u64,

    /// Seconds a tenant's endpoint may take to answer a webhook before the attempt fails.
    #[arg(
        long,
        env = "WAGATE_HOOKS_TIMEOUT_SECS",
        default_value_t = 10,
        global = true
    )]
    pub hooks_timeout_secs: u64,

    /// An endpoint whose every attempt has failed for this many seconds is disabled.
    #[arg(
        long,
        env = "WAGATE_HOOKS_DISABLE_AFTER_SECS",
        default_value_t = 86_400,
        global = true
    )]
    pub hooks_disable_after_secs: u64,

    /// Let tenants register webhook endpoints on loopback and private addresses (off: only public
    /// endpoints are called, so no tenant can make wagate reach into its own network).
    #[arg(
        long,
        env = "WAGATE_HOOKS_ALLOW_PRIVATE_URLS",
        default_value_t = false,
        action = clap::ArgAction::Set,
        global = true
    )]
    pub hooks_allow_private_urls: bool,

    /// API requests a minute for each API key, each signed-in user, and each client address
    /// without valid credentials (0: no limit).
    #[arg(
        long,
        env = "WAGATE_API_RATE_LIMIT",
        default_value = "100",
        global = true
    )]
    pub api_rate_limit: String,

    /// Sign-in attempts a minute for each account and for each client address (0: no limit).
    #[arg(
        long,
        env = "WAGATE_SIGNIN_RATE_LIMIT",
        default_value = "10",
        global = true
    )]
    pub signin_rate_limit: String,

    /// Webhook POSTs a minute for each connection's URL, and for each sender of the shared
    /// platform URL (0: no limit). High by default: see `RequestLimits::DEFAULT_WEBHOOK`.
    #[arg(
        long,
        env = "WAGATE_WEBHOOK_RATE_LIMIT",
        default_value = "30000",
        global = true
    )]
    pub webhook_rate_limit: String,

    /// Log format: `text` for people, `json` for log collectors.
    #[arg(long, env = "WAGATE_LOG_FORMAT", default_value = "text", global = true)]
    pub log_format: String,
}

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(String),
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        if raw.starts_with("sqlite:") {
            Ok(Self::Sqlite(raw.to_owned()))
        } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            Ok(Self::Postgres(raw.to_owned()))
        } else {
            Err(ConfigError::Invalid {
                name: "WAGATE_DATABASE_URL",
                reason: "must start with sqlite:// or postgres://".into(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Sqlite(url) | Self::Postgres(url) => url,
        }
    }
}

/// Settings after checking: every value here is usable as it is.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: DatabaseUrl,
    pub redis_url: Option<String>,
    pub master_key: Option<SecretString>,
    pub previous_master_keys: Option<SecretString>,
    /// No trailing slash.
    pub public_url: String,
    /// Whether `public_url` was set; if not, it follows the address actually bound (port 0 in tests).
    pub public_url_given: bool,
    pub graph_api_base: Url,
    pub graph_api_version: String,
    pub meta_app_secret: Option<SecretString>,
    pub meta_verify_token: Option<SecretString>,
    pub graph_timeout: Duration,
    /// Send attempts (rate limits, temporary errors) before a message fails.
    pub send_max_attempts: i64,
    /// How long a send whose outcome is unknown waits for Meta's confirmation before it fails.
    pub send_outcome_grace: Duration,
    /// How long a claimed job stays with its process.
    pub job_lease: Duration,
    /// How often each connection's templates are pulled from Meta again; `None`: never by itself.
    pub template_sync_interval: Option<Duration>,
    /// Attempts at fetching an inbound file before it is marked failed.
    pub media_fetch_attempts: i64,
    /// The largest inbound file kept.
    pub media_max_bytes: u64,
    /// Outbound webhooks to the tenants' own endpoints.
    pub hooks: HookSettings,
    /// Requests each caller may make a minute to the API, the sign-in form and the webhooks.
    pub rate_limits: RequestLimits,
    pub log_json: bool,
}

/// How many requests each caller may make a minute; `None` means not limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Per API key, per signed-in user (the dashboard's calls), per address otherwise.
    pub api: Option<PerMinute>,
    /// Per account and per address, both counted on every attempt.
    pub signin: Option<PerMinute>,
    /// Per connection URL; the shared platform URL per sending address.
    pub webhook: Option<PerMinute>,
}

impl RequestLimits {
    pub const DEFAULT_API: PerMinute = PerMinute::new(100);
    pub const DEFAULT_SIGNIN: PerMinute = PerMinute::new(10);
    /// A number at Meta's default 80 messages a second can get up to three status webhooks per
    /// message (sent, delivered, read) plus the customers' replies, about 15,000 a minute at
    /// peak; twice that leaves room for the backlog Meta redelivers after an outage. A 429 only
    /// delays delivery: Meta retries every webhook that did not get 200.
    pub const DEFAULT_WEBHOOK: PerMinute = PerMinute::new(30_000);

    /// No limit anywhere (benchmarks, tests that call far faster than people do).
    pub const OFF: Self = Self {
        api: None,
        signin: None,
        webhook: None,
    };
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            api: Some(Self::DEFAULT_API),
            signin: Some(Self::DEFAULT_SIGNIN),
            webhook: Some(Self::DEFAULT_WEBHOOK),
        }
    }
}

/// How webhooks to the tenants' endpoints are retried and given up.
#[derive(Debug, Clone, Copy)]
pub struct HookSettings {
    /// Attempts per delivery (a re-send starts a new count).
    pub max_attempts: i64,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// An endpoint failing every attempt for this long is disabled.
    pub disable_after: Duration,
    /// Whether endpoints on loopback and private addresses may be registered and called.
    pub allow_private_urls: bool,
}

impl Default for HookSettings {
    fn default() -> Self {
        Self {
            max_attempts: 12,
            first_backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(3600),
            timeout: Duration::from_secs(10),
            disable_after: Duration::from_secs(86_400),
            allow_private_urls: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is not valid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

impl SettingsArgs {
    /// Checks every value and fills the defaults that depend on others.
    pub fn resolve(&self) -> Result<Settings, ConfigError> {
        let listen: SocketAddr = self.listen.parse().map_err(|_| ConfigError::Invalid {
            name: "WAGATE_LISTEN",
            reason: format!("{:?} is not an address like 127.0.0.1:8080", self.listen),
        })?;
        let database_url = match &self.database_url {
            Some(url) if !url.trim().is_empty() => DatabaseUrl::parse(url.trim())?,
            _ => DatabaseUrl::Sqlite(format!(
                "sqlite://{}",
                self.data_dir.join("wagate.db").display()
            )),
        };
        let public_url = match &self.public_url {
            Some(url) if !url.trim().is_empty() => {
                let parsed = Url::parse(url.trim()).map_err(|e| ConfigError::Invalid {
                    name: "WAGATE_PUBLIC_URL",
                    reason: e.to_string(),
                })?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(ConfigError::Invalid {
                        name: "WAGATE_PUBLIC_URL",
                        reason: "must be an http:// or https:// URL".into(),
                    });
                }
                url.trim().trim_end_matches('/').to_owned()
            }
            _ => format!("http://{listen}"),
        };
        let graph_api_base =
            Url::parse(&self.graph_api_base).map_err(|e| ConfigError::Invalid {
                name: "WAGATE_GRAPH_API_BASE",
                reason: e.to_string(),
            })?;
        if !is_graph_version(&self.graph_api_version) {
            return Err(ConfigError::Invalid {
                name: "WAGATE_GRAPH_API_VERSION",
                reason: format!("{:?} is not a version like v24.0", self.graph_api_version),
            });
        }
        let log_json = match self.log_format.as_str() {
            "text" => false,
            "json" => true,
            other => {
                return Err(ConfigError::Invalid {
                    name: "WAGATE_LOG_FORMAT",
                    reason: format!("{other:?} is neither text nor json"),
                });
            }
        };
        let rate_limits = RequestLimits {
            api: per_minute("WAGATE_API_RATE_LIMIT", &self.api_rate_limit)?,
            signin: per_minute("WAGATE_SIGNIN_RATE_LIMIT", &self.signin_rate_limit)?,
            webhook: per_minute("WAGATE_WEBHOOK_RATE_LIMIT", &self.webhook_rate_limit)?,
        };
        Ok(Settings {
            listen,
            data_dir: self.data_dir.clone(),
            database_url,
            redis_url: self.redis_url.clone().filter(|u| !u.trim().is_empty()),
            master_key: self.master_key.clone(),
            previous_master_keys: self.previous_master_keys.clone(),
            public_url_given: self
                .public_url
                .as_deref()
                .is_some_and(|u| !u.trim().is_empty()),
            public_url,
            graph_api_base,
            graph_api_version: self.graph_api_version.clone(),
            meta_app_secret: self.meta_app_secret.clone(),
            meta_verify_token: self.meta_verify_token.clone(),
            graph_timeout: Duration::from_secs(self.graph_timeout_secs.max(1)),
            send_max_attempts: i64::from(self.send_max_attempts.clamp(1, 100)),
            send_outcome_grace: Duration::from_secs(self.send_outcome_grace_secs.max(1)),
            job_lease: Duration::from_secs(self.job_lease_secs.max(2)),
            template_sync_interval: (self.template_sync_secs > 0)
                .then(|| Duration::from_secs(self.template_sync_secs.max(10))),
            media_fetch_attempts: i64::from(self.media_fetch_attempts.clamp(1, 100)),
            media_max_bytes: self.media_max_bytes.max(1024),
            hooks: HookSettings {
                max_attempts: i64::from(self.hooks_max_attempts.clamp(1, 100)),
                first_backoff: Duration::from_millis(self.hooks_first_backoff_ms.max(1)),
                max_backoff: Duration::from_secs(self.hooks_max_backoff_secs.max(1)),
                timeout: Duration::from_secs(self.hooks_timeout_secs.clamp(1, 60)),
                disable_after: Duration::from_secs(self.hooks_disable_after_secs),
                allow_private_urls: self.hooks_allow_private_urls,
            },
            rate_limits,
            log_json,
        })
    }
}

fn per_minute(name: &'static str, raw: &str) -> Result<Option<PerMinute>, ConfigError> {
    PerMinute::parse(raw).map_err(|e| ConfigError::Invalid {
        name,
        reason: e.to_string(),
    })
}

fn is_graph_version(version: &str) -> bool {
    let Some(rest) = version.strip_prefix('v') else {
        return false;
    };
    let mut parts = rest.split('.');
    let major_ok = parts
        .next()
        .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let minor_ok = parts
        .next()
        .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    major_ok && minor_ok && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Probe {
        #[command(flatten)]
        settings: SettingsArgs,
    }

    fn resolve(args: &[&str]) -> Result<Settings, ConfigError> {
        let mut argv = vec!["probe"];
        argv.extend_from_slice(args);
        Probe::parse_from(argv).settings.resolve()
    }

    #[test]
    fn defaults_derive_the_database_and_public_url_from_the_others() {
        let settings = resolve(&["--listen", "127.0.0.1:9999", "--data-dir", "/tmp/x"]).unwrap();
        assert_eq!(
            settings.database_url,
            DatabaseUrl::Sqlite("sqlite:///tmp/x/wagate.db".into())
        );
        assert_eq!(settings.public_url, "http://127.0.0.1:9999");
    }

    #[test]
    fn bad_values_name_the_setting_to_fix() {
        let err = resolve(&["--listen", "nowhere"]).unwrap_err().to_string();
        assert!(err.contains("WAGATE_LISTEN"), "{err}");
        let err = resolve(&["--database-url", "mysql://x"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("WAGATE_DATABASE_URL"), "{err}");
        let err = resolve(&["--graph-api-version", "24"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("WAGATE_GRAPH_API_VERSION"), "{err}");
    }

    #[test]
    fn rate_limits_default_to_the_documented_figures_and_zero_turns_one_off() {
        let settings = resolve(&[]).unwrap();
        assert_eq!(settings.rate_limits, RequestLimits::default());
        assert_eq!(settings.rate_limits.api.map(PerMinute::get), Some(100));
        assert_eq!(settings.rate_limits.signin.map(PerMinute::get), Some(10));
        let settings = resolve(&["--api-rate-limit", "0", "--webhook-rate-limit", "500"]).unwrap();
        assert_eq!(settings.rate_limits.api, None);
        assert_eq!(settings.rate_limits.webhook, Some(PerMinute::new(500)));
        for (flag, name) in [
            ("--api-rate-limit", "WAGATE_API_RATE_LIMIT"),
            ("--signin-rate-limit", "WAGATE_SIGNIN_RATE_LIMIT"),
            ("--webhook-rate-limit", "WAGATE_WEBHOOK_RATE_LIMIT"),
        ] {
            let err = resolve(&[flag, "lots"]).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains("\"lots\""), "{err}");
            let err = resolve(&[&format!("{flag}=-5")]).unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn graph_versions_look_like_meta_ones() {
        assert!(is_graph_version("v24.0"));
        assert!(is_graph_version("v21.10"));
        assert!(!is_graph_version("v24"));
        assert!(!is_graph_version("24.0"));
        assert!(!is_graph_version("v24.0.1"));
    }
}
