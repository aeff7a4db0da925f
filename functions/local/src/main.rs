//! `stowage-local`: the whole registry in one process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, ValueEnum};
use stowage_http::{AppState, Limits};
use stowage_local::{SignedBlobs, app};
use stowage_runtime::StartupError;
use tokio::net::TcpListener;

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
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "STOWAGE_LISTEN")]
    listen: SocketAddr,
    /// Where the embedded backend keeps its data.
    #[arg(long, default_value = "./stowage-data", env = "STOWAGE_DATA_DIR")]
    data_dir: PathBuf,
    /// The URL clients reach this server at (default: http://<listen address>).
    #[arg(long, env = "STOWAGE_PUBLIC_URL")]
    public_url: Option<String>,
    #[arg(long, value_enum, default_value = "embedded", env = "STOWAGE_BACKEND")]
    backend: Backend,
    /// The largest request body taken, in bytes (only npm publishes are held in memory).
    #[arg(long, default_value_t = DEFAULT_MAX_BODY, env = "STOWAGE_MAX_BODY_BYTES")]
    max_body_bytes: usize,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    stowage_runtime::init_tracing();
    let cli = Cli::parse();
    let listener = TcpListener::bind(cli.listen).await?;
    let bound = listener.local_addr()?;
    let public_url = match &cli.public_url {
        Some(url) => stowage_runtime::parse_public_url(url)?,
        None => default_public_url(bound)?,
    };
    let settings = stowage_runtime::settings_from_env()?;
    let stores = match cli.backend {
        Backend::Embedded => stowage_runtime::embedded_stores(&cli.data_dir, &public_url)?,
        Backend::Aws => stowage_runtime::aws_stores().await?,
    };
    let signed = stores.signer.map(|signer| SignedBlobs {
        signer,
        blobs: Arc::clone(&stores.blobs),
    });
    let registry = stowage_runtime::registry(stores.metadata, stores.blobs, settings);
    if let Some(token) = stowage_runtime::bootstrap_site_admin(&registry, true).await? {
        // Shown once, on standard output, and never logged.
        println!(
            "Created the site admin 'admin'. Its token, shown only this once:\n\n    {}\n",
            token.expose()
        );
    }
    let state = AppState {
        registry,
        public_url: Some(public_url.clone()),
        limits: Limits::local(cli.max_body_bytes),
    };
    tracing::info!(%bound, %public_url, backend = ?cli.backend, "stowage-local is listening");
    axum::serve(listener, app(state, signed))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("stowage-local stopped");
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
