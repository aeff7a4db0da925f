//! Start-up shared by every binary: reading configuration from the environment, building the
//! storage adapters, setting up logging, and the site admin's first token. Handlers never
//! see any of this; they get an [`AppState`].
//!
//! Environment (all optional unless said):
//! - `STOWAGE_TABLE`, `STOWAGE_BUCKET`: the DynamoDB table and S3 bucket (required on AWS).
//! - `STOWAGE_PUBLIC_URL`: the URL clients use; by default taken from each request.
//! - `STOWAGE_RETENTION_DAYS` (30), `STOWAGE_PRESIGN_SECONDS` (300),
//!   `STOWAGE_PLAN_STANDARD_BYTES` (10 GiB), `STOWAGE_PLAN_PREMIUM_BYTES` (100 GiB),
//!   `STOWAGE_COLLECTION_GRACE_SECONDS` (3600),
//!   `STOWAGE_CREDENTIAL_CACHE_SECONDS` (30, at most 60).
//! - `STOWAGE_BOOTSTRAP_TOKEN`, or `STOWAGE_BOOTSTRAP_TOKEN_SHA256`: the site admin's token on
//!   an empty store.
//! - `STOWAGE_UPSTREAM_KEY`: on AWS, the KMS key (id, ARN or alias) sealing upstream
//!   credentials; without it upstreams take no credentials. Locally a key file in the data
//!   folder does this.
//! - `STOWAGE_UPSTREAM_TTL_SECONDS` (300): how long a document copied from an upstream is
//!   served before it is fetched again.
//! - `STOWAGE_UPSTREAM_EVICT_DAYS` (30): how long a package cached from an upstream is kept
//!   unused before the purge evicts it.
//! - `STOWAGE_UPSTREAM_ALLOW_PRIVATE=1`: upstreams may be private or loopback addresses,
//!   over http too (registries inside one's own network; tests).
//! - `STOWAGE_UPLOAD_SERVICE=enabled`: on Lambda, an upload service beside the functions takes
//!   the requests with large bodies (the deployment's front routes them there).
//! - `STOWAGE_LOG_FORMAT=json`, `STOWAGE_LOG` or `RUST_LOG` (a tracing filter, default `info`).
//!
//! Features choose the adapters a binary links: `aws` (DynamoDB and S3) and `embedded` (SQLite
//! and files). Each Lambda function takes `aws` alone; the local server takes both.

use std::sync::Arc;
use std::time::Duration;

use stowage_domain::{Clock, SystemClock, TokenHash, TokenSecret, UpstreamReach};
use stowage_service::{BootstrapToken, PlanLimits, Registry, Settings};
use stowage_storage::{BlobStore, MetadataStore, SecretSealer};
#[cfg(feature = "aws")]
use stowage_storage_aws::{AwsClients, DynamoMetadataStore, KmsSealer, S3BlobStore};
#[cfg(feature = "embedded")]
use stowage_storage_embedded::{
    FileBlobStore, KeyFileSealer, SqliteMetadataStore, UrlSigner, load_or_create_key,
};
use url::Url;

/// The longest a verified credential may be trusted without reading it again.
const MAX_CREDENTIAL_CACHE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{name} is required")]
    Missing { name: &'static str },
    #[error("{name}: {message}")]
    Invalid { name: &'static str, message: String },
    #[error("cannot open the data folder {path}")]
    DataFolder {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot create the site admin")]
    Bootstrap(#[source] stowage_service::Error),
}

fn var(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

fn number_var(name: &'static str, default: u64) -> Result<u64, StartupError> {
    match var(name) {
        None => Ok(default),
        Some(value) => value.parse().map_err(|_| StartupError::Invalid {
            name,
            message: format!("must be a whole number (got {value:?})"),
        }),
    }
}

/// The service settings from the environment.
pub fn settings_from_env() -> Result<Settings, StartupError> {
    let cache = Duration::from_secs(number_var("STOWAGE_CREDENTIAL_CACHE_SECONDS", 30)?);
    if cache > MAX_CREDENTIAL_CACHE {
        return Err(StartupError::Invalid {
            name: "STOWAGE_CREDENTIAL_CACHE_SECONDS",
            message: "must be at most 60, so that revoked tokens stop working within a minute"
                .into(),
        });
    }
    let retention_days = number_var("STOWAGE_RETENTION_DAYS", 30)?;
    let defaults = PlanLimits::default();
    Ok(Settings {
        retention: chrono_days(retention_days),
        credential_cache_ttl: cache,
        presign_ttl: Duration::from_secs(number_var("STOWAGE_PRESIGN_SECONDS", 300)?),
        plan_limits: PlanLimits {
            standard: number_var("STOWAGE_PLAN_STANDARD_BYTES", defaults.standard)?,
            premium: number_var("STOWAGE_PLAN_PREMIUM_BYTES", defaults.premium)?,
        },
        collection_grace: chrono::Duration::seconds(
            i64::try_from(number_var("STOWAGE_COLLECTION_GRACE_SECONDS", 3600)?)
                .unwrap_or(i64::MAX / 1000),
        ),
        upstream_reach: upstream_reach_from_env()?,
        upstream_evict_after: chrono_days(number_var("STOWAGE_UPSTREAM_EVICT_DAYS", 30)?),
        upstream_ttl: chrono::Duration::seconds(
            i64::try_from(number_var("STOWAGE_UPSTREAM_TTL_SECONDS", 300)?)
                .unwrap_or(i64::MAX / 1000),
        ),
        ..Settings::default()
    })
}

fn upstream_reach_from_env() -> Result<UpstreamReach, StartupError> {
    match var("STOWAGE_UPSTREAM_ALLOW_PRIVATE").as_deref() {
        None | Some("0") => Ok(UpstreamReach::PublicOnly),
        Some("1") => Ok(UpstreamReach::AnyAddress),
        Some(other) => Err(StartupError::Invalid {
            name: "STOWAGE_UPSTREAM_ALLOW_PRIVATE",
            message: format!("must be 1 or 0 (got {other:?})"),
        }),
    }
}

fn chrono_days(days: u64) -> chrono::Duration {
    // Beyond a million years the exact figure stops mattering.
    chrono::Duration::days(i64::try_from(days).unwrap_or(365_000_000).min(365_000_000))
}

/// `STOWAGE_PUBLIC_URL`, if set.
pub fn public_url_from_env() -> Result<Option<Url>, StartupError> {
    var("STOWAGE_PUBLIC_URL")
        .map(|value| parse_public_url(&value))
        .transpose()
}

pub fn parse_public_url(value: &str) -> Result<Url, StartupError> {
    Url::parse(value).map_err(|error| StartupError::Invalid {
        name: "public URL",
        message: error.to_string(),
    })
}

/// A pair of storage adapters.
pub struct Stores {
    pub metadata: Arc<dyn MetadataStore>,
    pub blobs: Arc<dyn BlobStore>,
    /// Seals upstream credentials (none on AWS without `STOWAGE_UPSTREAM_KEY`).
    pub sealer: Option<Arc<dyn SecretSealer>>,
    /// The signer of blob URLs, when the blob store's URLs are served by this process
    /// (embedded storage); S3 serves its own.
    #[cfg(feature = "embedded")]
    pub signer: Option<UrlSigner>,
}

/// The AWS adapters, on the table and bucket named by `STOWAGE_TABLE` and `STOWAGE_BUCKET`.
#[cfg(feature = "aws")]
pub async fn aws_stores() -> Result<Stores, StartupError> {
    let table = var("STOWAGE_TABLE").ok_or(StartupError::Missing {
        name: "STOWAGE_TABLE",
    })?;
    let bucket = var("STOWAGE_BUCKET").ok_or(StartupError::Missing {
        name: "STOWAGE_BUCKET",
    })?;
    let clients = AwsClients::from_env().await;
    let sealer = var("STOWAGE_UPSTREAM_KEY")
        .map(|key| Arc::new(KmsSealer::new(clients.kms.clone(), key)) as Arc<dyn SecretSealer>);
    Ok(Stores {
        metadata: Arc::new(DynamoMetadataStore::new(clients.dynamodb, table)),
        blobs: Arc::new(S3BlobStore::new(clients.s3, bucket)),
        sealer,
        #[cfg(feature = "embedded")]
        signer: None,
    })
}

/// The embedded adapters in `data_dir` (created if needed), signing blob URLs for
/// `public_url`.
#[cfg(feature = "embedded")]
pub fn embedded_stores(
    data_dir: &std::path::Path,
    public_url: &Url,
) -> Result<Stores, StartupError> {
    let folder_error =
        |source: Box<dyn std::error::Error + Send + Sync>| StartupError::DataFolder {
            path: data_dir.display().to_string(),
            source,
        };
    create_private_dir(data_dir).map_err(|e| folder_error(Box::new(e)))?;
    let key =
        load_or_create_key(&data_dir.join("signing.key")).map_err(|e| folder_error(Box::new(e)))?;
    let signer = UrlSigner::new(public_url.clone(), key);
    let metadata = SqliteMetadataStore::open(&data_dir.join("stowage.db"))
        .map_err(|e| folder_error(Box::new(e)))?;
    let blobs = FileBlobStore::open(&data_dir.join("blobs"), signer.clone())
        .map_err(|e| folder_error(Box::new(e)))?;
    let sealer = KeyFileSealer::open(&data_dir.join("upstream-secrets.key"))
        .map_err(|e| folder_error(Box::new(e)))?;
    Ok(Stores {
        metadata: Arc::new(metadata),
        blobs: Arc::new(blobs),
        sealer: Some(Arc::new(sealer)),
        signer: Some(signer),
    })
}

/// Creates the data folder, or makes an existing one, accessible to its owner only: it holds
/// every package and the signing key.
#[cfg(feature = "embedded")]
fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder.create(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
    }
    #[cfg(not(unix))]
    builder.create(path)
}

impl Stores {
    /// The service over these stores, on the system clock.
    pub fn registry(&self, settings: Settings) -> Arc<Registry> {
        self.registry_with_clock(settings, Arc::new(SystemClock))
    }

    /// The service over these stores, on a given clock (`stowage-local purge --now`).
    pub fn registry_with_clock(&self, settings: Settings, clock: Arc<dyn Clock>) -> Arc<Registry> {
        let registry = Registry::new(
            Arc::clone(&self.metadata),
            Arc::clone(&self.blobs),
            clock,
            settings,
        );
        Arc::new(match &self.sealer {
            Some(sealer) => registry.with_sealer(Arc::clone(sealer)),
            None => registry,
        })
    }
}

/// The state of a Lambda function: AWS adapters, the platform's request limits.
#[cfg(feature = "aws")]
pub async fn lambda_state() -> Result<stowage_http::AppState, StartupError> {
    let stores = aws_stores().await?;
    let limits = match var("STOWAGE_UPLOAD_SERVICE").as_deref() {
        None | Some("disabled") => stowage_http::Limits::LAMBDA,
        Some("enabled") => stowage_http::Limits::LAMBDA.with_upload_service(),
        Some(other) => {
            return Err(StartupError::Invalid {
                name: "STOWAGE_UPLOAD_SERVICE",
                message: format!("must be enabled or disabled (got {other:?})"),
            });
        }
    };
    Ok(stowage_http::AppState {
        registry: stores.registry(settings_from_env()?),
        public_url: public_url_from_env()?,
        limits,
    })
}

/// Creates the site admin on an empty store, with the token configured by
/// `STOWAGE_BOOTSTRAP_TOKEN` or, so that the secret never reaches the server,
/// `STOWAGE_BOOTSTRAP_TOKEN_SHA256`. With neither, a token is generated and returned (to be
/// shown once) when `may_generate`, else nothing is created.
pub async fn bootstrap_site_admin(
    registry: &Registry,
    may_generate: bool,
) -> Result<Option<TokenSecret>, StartupError> {
    let configured = configured_bootstrap()?;
    if registry
        .has_site_admin()
        .await
        .map_err(StartupError::Bootstrap)?
    {
        if configured.is_some() {
            tracing::warn!(
                "STOWAGE_BOOTSTRAP_TOKEN (or _SHA256) is ignored: the data already has a site \
                 admin. A new admin token: `stowage-local admin-token`"
            );
        }
        return Ok(None);
    }
    let bootstrap = match configured {
        Some(configured) => configured,
        None if may_generate => BootstrapToken::Generate,
        None => return Ok(None),
    };
    registry
        .bootstrap_site_admin(bootstrap)
        .await
        .map_err(StartupError::Bootstrap)
}

/// The shortest random part a configured admin token may have (generated ones have 40).
const BOOTSTRAP_TOKEN_MIN_RANDOM: usize = 32;

/// The site admin's first token as configured, if it is: checked, so that a guessable or
/// mistyped secret never becomes the admin's.
fn configured_bootstrap() -> Result<Option<BootstrapToken>, StartupError> {
    if let Some(secret) = var("STOWAGE_BOOTSTRAP_TOKEN") {
        let random = secret.strip_prefix(stowage_domain::TOKEN_PREFIX);
        if random.is_none_or(|random| {
            random.len() < BOOTSTRAP_TOKEN_MIN_RANDOM
                || !random.chars().all(|c| c.is_ascii_alphanumeric())
        }) {
            return Err(StartupError::Invalid {
                name: "STOWAGE_BOOTSTRAP_TOKEN",
                message: format!(
                    "must be {}, then at least {BOOTSTRAP_TOKEN_MIN_RANDOM} letters and digits \
                     (e.g. the output of: echo stw_$(openssl rand -hex 24))",
                    stowage_domain::TOKEN_PREFIX
                ),
            });
        }
        return Ok(Some(BootstrapToken::Secret(TokenSecret::from_presented(
            secret,
        ))));
    }
    if let Some(hash) = var("STOWAGE_BOOTSTRAP_TOKEN_SHA256") {
        let hash =
            TokenHash::parse_hex("STOWAGE_BOOTSTRAP_TOKEN_SHA256", &hash).map_err(|invalid| {
                StartupError::Invalid {
                    name: "STOWAGE_BOOTSTRAP_TOKEN_SHA256",
                    message: invalid.message,
                }
            })?;
        return Ok(Some(BootstrapToken::Sha256(hash)));
    }
    Ok(None)
}

/// Logs to standard error: JSON (as Lambda wants) when `STOWAGE_LOG_FORMAT=json`, else text.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = var("STOWAGE_LOG")
        .or_else(|| var("RUST_LOG"))
        .unwrap_or_else(|| "info".to_owned());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only for a person at a terminal, never into a file or a log service.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let result = if var("STOWAGE_LOG_FORMAT").as_deref() == Some("json") {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.try_init()
    };
    // A subscriber set already (by a test harness) is fine.
    drop(result);
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use super::*;
    use std::path::Path;

    #[cfg(unix)]
    #[test]
    fn the_data_folder_is_its_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().expect("temporary folder");
        let data = parent.path().join("data");
        let url = Url::parse("http://127.0.0.1:8080/").expect("url");
        embedded_stores(&data, &url).expect("stores");
        let mode =
            |path: &Path| std::fs::metadata(path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("stowage.db")), 0o600);
        assert_eq!(mode(&data.join("signing.key")), 0o600);
        // A folder made by hand with the usual umask is closed on start.
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        embedded_stores(&data, &url).expect("stores again");
        assert_eq!(mode(&data), 0o700);
    }
}
