//! What both proxies do with documents that change upstream (an npm package document, a Maven
//! `maven-metadata.xml`): the first fetch of a name makes the package, later reads serve the
//! copy while fresh, fetch it again once stale, and serve the stale copy while the upstream
//! fails. Each protocol gives only how its document is fetched and checked.

use bytes::Bytes;
use futures_util::future::BoxFuture;
use stowage_domain::{PackageName, Slug};
use stowage_service::{
    Error, ItemKey, PackageRecord, ReachableUpstream, Registry, UpstreamCopies, UpstreamCopy,
};

use crate::FetchError;

/// The first request for a name the workspace does not have: the first upstream whose
/// `fetch` has it makes it a package, with the document as its copy `id`. `None` when
/// another request made the package meanwhile (the caller opens it again); not found when
/// no upstream has it. Concurrent first requests make one fetch: the others wait for it.
pub async fn first_copy<'a>(
    registry: &Registry,
    workspace: &Slug,
    name: &PackageName,
    upstreams: &'a [ReachableUpstream],
    id: &str,
    fetch: impl Fn(&'a ReachableUpstream) -> BoxFuture<'a, Result<Bytes, FetchError>>,
) -> Result<Option<Bytes>, Error> {
    let Some(kind) = upstreams.first().map(|upstream| upstream.upstream.kind) else {
        return Err(FetchError::NotFound.into());
    };
    let evidence = ItemKey::in_package::<UpstreamCopies>(workspace, kind, name, id);
    let made = || async {
        let made = registry
            .made_meanwhile(workspace, kind, name, &evidence)
            .await?;
        Ok::<_, Error>(made.then_some(None))
    };
    let first = || async {
        let mut failure = FetchError::NotFound;
        for upstream in upstreams {
            let bytes = match fetch(upstream).await {
                Ok(bytes) => bytes,
                Err(FetchError::NotFound) => continue,
                Err(other) => {
                    tracing::warn!(upstream = %upstream.upstream.url, error = %other, "upstream failed");
                    failure = other;
                    continue;
                }
            };
            let Some(package) = registry
                .create_proxied_package(workspace, &upstream.upstream, name)
                .await?
            else {
                return Ok(None);
            };
            registry
                .keep_upstream_copy(&package, id, bytes.clone(), None)
                .await?;
            return Ok(Some(bytes));
        }
        Err(failure.into())
    };
    registry
        .fetch_first_once(workspace, kind, name, id, made, first)
        .await
}

/// A cached package's copy `id` (read with the package, `copy`): served while fresh, else
/// fetched again from the package's upstream with `fetch` and kept; while the upstream fails,
/// or after it was removed, the stale copy is served. One request refreshes a stale copy; the
/// others serve it stale meanwhile. Without a copy at all, they wait for that one.
pub async fn refreshed_copy<'a>(
    registry: &Registry,
    package: &PackageRecord,
    id: &str,
    copy: Option<UpstreamCopy>,
    fetch: impl FnOnce(ReachableUpstream) -> BoxFuture<'a, Result<Bytes, FetchError>>,
) -> Result<Bytes, Error> {
    match copy {
        Some(copy) if registry.is_fresh(&copy) => registry.read_upstream_copy(&copy).await,
        Some(stale) => {
            let Some(marker) = registry.try_fetch(package, id).await? else {
                return registry.read_upstream_copy(&stale).await;
            };
            let refreshed = refresh(registry, package, id, Some(stale), fetch).await;
            registry.release_fetch(marker).await;
            refreshed
        }
        None => {
            let items = registry.package_items(package);
            let kept = || async {
                match items.get::<UpstreamCopies>(id).await? {
                    Some(found) => registry.read_upstream_copy(&found.payload).await.map(Some),
                    None => Ok(None),
                }
            };
            let first = || refresh(registry, package, id, None, fetch);
            registry.fetch_once(package, id, kept, first).await
        }
    }
}

/// Fetches copy `id` from the package's upstream and keeps it in place of `stale`; while the
/// upstream fails, or after it was removed, serves `stale`.
async fn refresh<'a>(
    registry: &Registry,
    package: &PackageRecord,
    id: &str,
    stale: Option<UpstreamCopy>,
    fetch: impl FnOnce(ReachableUpstream) -> BoxFuture<'a, Result<Bytes, FetchError>>,
) -> Result<Bytes, Error> {
    let fetched = match registry.upstream_of(package).await? {
        Some(upstream) => fetch(upstream).await,
        None => Err(FetchError::NotFound),
    };
    match (fetched, stale) {
        (Ok(bytes), stale) => {
            registry
                .keep_upstream_copy(package, id, bytes.clone(), stale.as_ref())
                .await?;
            Ok(bytes)
        }
        (Err(error), Some(stale)) => {
            tracing::warn!(package = %package.name, %error, "upstream failed; serving the cached copy");
            registry.read_upstream_copy(&stale).await
        }
        (Err(error), None) => Err(error.into()),
    }
}
