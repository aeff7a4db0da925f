//! `stowage-local`: the whole registry in one process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use stowage_http::{AppState, Limits};
use stowage_local::{
    ConnectionLimits, SignedBlobs, app, emulate, raise_open_file_limit, serve, signed_blob_router,
};
use stowage_runtime::StartupError;
use tokio::net::TcpListener;

/// glibc's allocator serialises the server's threads on its arena locks under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The default largest request body on the local server (the Lambda path is capped by AWS).
const DEFAULT_MAX_BODY: usize = 512 * 1024 * 1024;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Backend {
    /// SQLite and a folder of files in --data-dir.
    Embedded,
    /// DynamoDB and S3 (STOWAGE_TABLE, STOWAGE_BUCKET and the standard AWS environment).
    Aws,
}

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Stowage: a registry for container images, npm packages and Maven artifacts"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "STOWAGE_LISTEN")]
    listen: SocketAddr,
    /// Where the embedded backend keeps its data.
    #[arg(
        long,
        global = true,
        default_value = "./stowage-data",
        env = "STOWAGE_DATA_DIR"
    )]
    data_dir: PathBuf,
    /// The URL clients reach this server at (default: http://<listen address>).
    #[arg(long, env = "STOWAGE_PUBLIC_URL")]
    public_url: Option<String>,
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "embedded",
        env = "STOWAGE_BACKEND"
    )]
    backend: Backend,
    /// The largest request body taken, in bytes (only npm publishes are held in memory).
    #[arg(long, default_value_t = DEFAULT_MAX_BODY, env = "STOWAGE_MAX_BODY_BYTES")]
    max_body_bytes: usize,
    /// How often the server runs the purge, in seconds (0: never).
    #[arg(long, default_value_t = 3600, env = "STOWAGE_PURGE_INTERVAL_SECONDS")]
    purge_interval_seconds: u64,
    /// Seconds a request's headers may take to arrive; an idle keep-alive connection is
    /// closed after as long.
    #[arg(long, default_value_t = 60, env = "STOWAGE_HEADER_TIMEOUT_SECONDS")]
    header_timeout_seconds: u64,
    /// Seconds a request body may send nothing before it is broken off.
    #[arg(long, default_value_t = 60, env = "STOWAGE_BODY_TIMEOUT_SECONDS")]
    body_timeout_seconds: u64,
    /// Connections served at once; more are answered 503 (default: 4096, or fewer when the
    /// open-file limit is lower).
    #[arg(long, env = "STOWAGE_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Serves the registry's metrics (`GET /metrics`, Prometheus' text format) at this
    /// address, apart from the registry's own: keep it where only your monitoring reaches.
    #[arg(long, env = "STOWAGE_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Serves the AWS deployment's shape: the CloudFront front's routing rule, requests for
    /// Lambda through API Gateway's event and limits (6 MB, 30 s), large bodies to the upload
    /// service.
    #[arg(long)]
    emulate_aws: bool,
    /// With --emulate-aws: a deployment without the upload service (every request through
    /// Lambda, with its limit on request size).
    #[arg(long, requires = "emulate_aws")]
    without_upload_service: bool,
}

/// File descriptors kept back from connections: the database, blob files, the listener.
const RESERVED_FILES: u64 = 128;

impl Cli {
    fn connection_limits(&self) -> ConnectionLimits {
        let defaults = ConnectionLimits::default();
        let open_files = raise_open_file_limit();
        let fitting = open_files.map_or(defaults.max_connections, |limit| {
            (limit.saturating_sub(RESERVED_FILES) as usize).clamp(1, defaults.max_connections)
        });
        ConnectionLimits {
            header_timeout: Duration::from_secs(self.header_timeout_seconds.max(1)),
            body_timeout: Duration::from_secs(self.body_timeout_seconds.max(1)),
            max_connections: self.max_connections.unwrap_or(fitting).max(1),
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the purge once on the data (the server need not be running), and prints what it did.
    Purge {
        /// The time to purge as of (RFC 3339); the present by default.
        #[arg(long)]
        now: Option<String>,
        /// The most time the run may take, in seconds.
        #[arg(long, default_value_t = 3600)]
        budget_seconds: u64,
    },
    /// Mints a new token for the site admin on the data (the server need not be stopped), and
    /// prints it once: for a lost or expiring admin token.
    AdminToken {
        /// The new token's name.
        #[arg(long, default_value = "admin-token")]
        name: String,
    },
}

/// How long one purge run of the server may take.
const SERVER_PURGE_BUDGET: Duration = Duration::from_secs(600);

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Runs the command; a failure is printed as a sentence and its causes, not as a debug dump.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    stowage_runtime::init_tracing();
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            let mut message = format!("stowage-local: {error}");
            let mut source = error.source();
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("{message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    match &cli.command {
        Some(Command::Purge {
            now,
            budget_seconds,
        }) => {
            return purge_once(&cli, now.as_deref(), Duration::from_secs(*budget_seconds)).await;
        }
        Some(Command::AdminToken { name }) => return admin_token(&cli, name).await,
        None => {}
    }
    // On AWS the URL comes with each request, from the deployment's front.
    let embedded = matches!(cli.backend, Backend::Embedded);
    if embedded && cli.listen.ip().is_unspecified() && cli.public_url.is_none() {
        return Err(format!(
            "--listen {} serves other machines, and the registry's redirects and upload URLs \
             name the URL clients reach it at: give it with --public-url (e.g. \
             --public-url http://registry.example.com:{})",
            cli.listen,
            cli.listen.port()
        )
        .into());
    }
    let listener = TcpListener::bind(cli.listen).await?;
    let bound = listener.local_addr()?;
    let configured_url = cli
        .public_url
        .as_deref()
        .map(stowage_runtime::parse_public_url)
        .transpose()?;
    let public_url = match &configured_url {
        Some(url) => url.clone(),
        None => default_public_url(bound)?,
    };
    let settings = stowage_runtime::settings_from_env()?;
    let mut stores = match cli.backend {
        Backend::Embedded => stowage_runtime::embedded_stores(&cli.data_dir, &public_url)?,
        Backend::Aws => stowage_runtime::aws_stores().await?,
    };
    let signed = stores.signer.take().map(|signer| SignedBlobs {
        signer,
        blobs: Arc::clone(&stores.blobs),
    });
    let make_registry = move || stores.registry(settings.clone());
    let registry = make_registry();
    if matches!(cli.backend, Backend::Embedded) {
        // This process alone serves the data folder: no request of an earlier run (one that
        // crashed, say) still holds an upload.
        let released = registry.release_upload_holds().await?;
        if released > 0 {
            tracing::info!(released, "released uploads held by an earlier run");
        }
    }
    // A token is generated (and shown) only for the embedded store, whose output is its
    // owner's terminal; on AWS the output is a log, and the site admin comes from the
    // deployment (STOWAGE_BOOTSTRAP_TOKEN_SHA256).
    let may_generate = matches!(cli.backend, Backend::Embedded);
    if let Some(token) = stowage_runtime::bootstrap_site_admin(&registry, may_generate).await? {
        // Shown once, on standard output, and never logged.
        println!(
            "Created the site admin 'admin'. Its token, shown only this once:\n\n    {}\n\n\
             It expires in a year; mint the next (or replace a lost one) with \
             `stowage-local admin-token --data-dir {}`.\n",
            token.expose(),
            cli.data_dir.display()
        );
    }
    let state = AppState {
        registry,
        // On AWS, behind a load balancer, the URL is the one each request names (the
        // deployment's front says it); locally, the address listened on.
        public_url: match cli.backend {
            Backend::Embedded => Some(public_url.clone()),
            Backend::Aws => configured_url,
        },
        limits: Limits::local(cli.max_body_bytes),
    };
    if cli.purge_interval_seconds > 0 {
        tokio::spawn(purge_periodically(
            Arc::clone(&state.registry),
            Duration::from_secs(cli.purge_interval_seconds),
        ));
    }
    if let Some(address) = cli.metrics_listen {
        let metrics = TcpListener::bind(address).await?;
        tracing::info!(address = %metrics.local_addr()?, "metrics are served at /metrics");
        tokio::spawn(serve_metrics(metrics));
    }
    let limits = cli.connection_limits();
    let router = if cli.emulate_aws {
        emulated_deployment(&cli, state, signed, make_registry)
    } else {
        app(state, signed)
    };
    tracing::info!(%bound, %public_url, backend = ?cli.backend, emulate_aws = cli.emulate_aws, ?limits, "stowage-local is listening");
    serve(listener, router, limits, shutdown_signal()).await;
    tracing::info!("stowage-local stopped");
    Ok(())
}

/// The AWS deployment on one machine: the front, the Lambda functions each over a registry of
/// its own, and (unless left out) the upload service over `state`.
fn emulated_deployment(
    cli: &Cli,
    state: AppState,
    signed: Option<SignedBlobs>,
    make_registry: impl Fn() -> Arc<stowage_service::Registry>,
) -> axum::Router {
    let upload_service = !cli.without_upload_service;
    let functions =
        emulate::Functions::new(emulate::lambda_state_factory(make_registry, upload_service));
    let uploads = upload_service.then(|| app(state, None));
    emulate::front(functions, uploads, signed.map(signed_blob_router))
}

/// `GET /metrics` on its own listener.
async fn serve_metrics(listener: TcpListener) {
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            (
                [(
                    http::header::CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )],
                stowage_http::render_metrics(),
            )
        }),
    );
    if let Err(error) = axum::serve(listener, router).await {
        tracing::error!(?error, "the metrics listener stopped");
    }
}

/// Runs the purge every `interval`, as the scheduled function does on AWS.
async fn purge_periodically(registry: Arc<stowage_service::Registry>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        match stowage_purge::run(&registry, SERVER_PURGE_BUDGET).await {
            Ok(report) => stowage_http::record_purge(Some(&report)),
            Err(error) => {
                stowage_http::record_purge(None);
                tracing::error!(?error, "purge run failed");
            }
        }
    }
}

/// `stowage-local admin-token`: a new token for the site admin, printed once.
async fn admin_token(cli: &Cli, name: &str) -> Result<(), Failure> {
    let stores = match cli.backend {
        Backend::Embedded => {
            stowage_runtime::embedded_stores(&cli.data_dir, &default_public_url(cli.listen)?)?
        }
        Backend::Aws => stowage_runtime::aws_stores().await?,
    };
    let registry = stores.registry(stowage_runtime::settings_from_env()?);
    if !registry.has_site_admin().await? {
        return Err("this data has no site admin yet: start the server once to create it".into());
    }
    let issued = registry.mint_site_admin_token(name).await?;
    println!(
        "A new token for the site admin 'admin', expiring {}, shown only this once:\n\n    {}\n",
        issued
            .token
            .expires_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        issued.secret.expose()
    );
    Ok(())
}

/// `stowage-local purge`: one run on the data folder (or the AWS backend), as of `now`.
async fn purge_once(cli: &Cli, now: Option<&str>, budget: Duration) -> Result<(), Failure> {
    let public_url = default_public_url(cli.listen)?;
    let stores = match cli.backend {
        Backend::Embedded => stowage_runtime::embedded_stores(&cli.data_dir, &public_url)?,
        Backend::Aws => stowage_runtime::aws_stores().await?,
    };
    let clock: Arc<dyn stowage_domain::Clock> = match now {
        Some(now) => {
            let now = chrono::DateTime::parse_from_rfc3339(now)?.with_timezone(&chrono::Utc);
            Arc::new(stowage_domain::ManualClock::new(now))
        }
        None => Arc::new(stowage_domain::SystemClock),
    };
    let settings = stowage_runtime::settings_from_env()?;
    let registry = stores.registry_with_clock(settings, clock);
    let report = stowage_purge::run(&registry, budget).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

fn default_public_url(bound: SocketAddr) -> Result<url::Url, StartupError> {
    let host = if bound.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        bound.ip().to_string()
    };
    let host = if bound.is_ipv6() && !bound.ip().is_unspecified() {
        format!("[{host}]")
    } else {
        host
    };
    stowage_runtime::parse_public_url(&format!("http://{host}:{}/", bound.port()))
}

/// Resolves on SIGINT or SIGTERM, letting requests in flight finish.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}
