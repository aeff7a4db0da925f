//! A model-based test: random sequences of what users do (push, tag, delete, publish,
//! unpublish, hostile document updates, deploy, delete and restore packages, repositories and
//! workspaces, time passing and the purge running), by several users in two workspaces, checked
//! after every step against a small model of who may see what and what must still be readable.
//! Both storage pairs; the number of cases is kept small so that the suite stays quick
//! (`STOWAGE_MODEL_CASES` asks for more).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::Config;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use serde_json::{Value, json};
use sha1::{Digest as _, Sha1};
use stowage_http::Limits;
use stowage_service::Settings;
use stowage_tests::npm::{encoded, publish_document};
use stowage_tests::oci::{OCI_MANIFEST, sha256};
use stowage_tests::{Auth, Backend, Stores, TestServer};

const DAY: i64 = 24;
const RETENTION_DAYS: i64 = 30;

// ---------------------------------------------------------------------------------------------
// The world: workspaces, repositories, packages and who holds which role.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ws {
    Acme,
    Beta,
}

impl Ws {
    fn slug(self) -> &'static str {
        match self {
            Ws::Acme => "acme",
            Ws::Beta => "beta",
        }
    }
}

/// Repositories as (workspace, slug).
const REPOS: [(Ws, &str); 3] = [(Ws::Acme, "app"), (Ws::Acme, "lib"), (Ws::Beta, "app")];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Container,
    Npm,
    Maven,
}

/// A package: its kind, name, and repository (an index into [`REPOS`]).
struct PackageSpec {
    kind: Kind,
    name: &'static str,
    repo: usize,
}

const PACKAGES: [PackageSpec; 6] = [
    PackageSpec {
        kind: Kind::Container,
        name: "app/img",
        repo: 0,
    },
    PackageSpec {
        kind: Kind::Container,
        name: "lib/img",
        repo: 1,
    },
    PackageSpec {
        kind: Kind::Container,
        name: "app/img",
        repo: 2,
    },
    PackageSpec {
        kind: Kind::Npm,
        name: "pkg-app",
        repo: 0,
    },
    PackageSpec {
        kind: Kind::Npm,
        name: "pkg-lib",
        repo: 1,
    },
    PackageSpec {
        kind: Kind::Maven,
        name: "com.acme:app",
        repo: 0,
    },
];

const CONTAINERS: [usize; 3] = [0, 1, 2];
const NPMS: [usize; 2] = [3, 4];
const MAVEN: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Read,
    Write,
    Admin,
}

/// The users: alice runs acme, bob runs beta; carol reads acme/app and writes acme/lib; erin
/// writes acme/app; dave belongs nowhere.
const USERS: [&str; 5] = ["alice", "bob", "carol", "erin", "dave"];

fn role(user: usize, repo: usize) -> Option<Role> {
    match (USERS[user], repo) {
        ("alice", 0 | 1) | ("bob", 2) => Some(Role::Admin),
        ("carol", 0) => Some(Role::Read),
        ("carol", 1) | ("erin", 0) => Some(Role::Write),
        _ => None,
    }
}

/// Who may push to a container package: everyone with the write role on its repository.
fn writers(package: usize) -> Vec<usize> {
    (0..USERS.len())
        .filter(|user| role(*user, PACKAGES[package].repo) >= Some(Role::Write))
        .collect()
}

/// The content variant of a tarball published to several packages at once.
const SHARED_VARIANT: u8 = 9;

/// The admin of each workspace: its creator.
fn workspace_admin(ws: Ws) -> usize {
    match ws {
        Ws::Acme => 0,
        Ws::Beta => 1,
    }
}

// ---------------------------------------------------------------------------------------------
// The model.

#[derive(Debug, Clone, Default, PartialEq)]
struct Life {
    deleted_at: Option<i64>,
    purged: bool,
}

impl Life {
    fn live(&self) -> bool {
        self.deleted_at.is_none() && !self.purged
    }
}

/// An image: which one, and whether its manifest is too large for a metadata record.
type ImageKey = (u8, bool);

#[derive(Debug, Clone, Default, PartialEq)]
struct Content {
    /// Container: tag → image; the manifests pushed.
    tags: BTreeMap<u8, ImageKey>,
    manifests: BTreeSet<ImageKey>,
    /// npm and Maven: version → which content variant; versions that may never come back.
    versions: BTreeMap<u8, u8>,
    retired: BTreeSet<u8>,
}

/// What the last step should have answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Ok,
    /// 403 or 404: refused, or not there for this caller.
    Denied,
    NotFound,
    Conflict,
    BadRequest,
}

#[derive(Debug, Clone, PartialEq)]
struct Model {
    hours: i64,
    workspaces: BTreeMap<Ws, Life>,
    repos: Vec<Life>,
    packages: Vec<Life>,
    content: Vec<Content>,
    expect: Expect,
}

impl Model {
    fn ws_of(repo: usize) -> Ws {
        REPOS[repo].0
    }

    fn repo_live(&self, repo: usize) -> bool {
        self.repos[repo].live() && self.workspaces[&Self::ws_of(repo)].live()
    }

    /// Whether a user belongs to a workspace: its admin, or holding a role on a repository
    /// that is not purged (a purge takes the repository's roles with it).
    fn member(&self, user: usize, ws: Ws) -> bool {
        workspace_admin(ws) == user
            || REPOS.iter().enumerate().any(|(repo, (w, _))| {
                *w == ws && role(user, repo).is_some() && !self.repos[repo].purged
            })
    }

    fn visible(&self, user: usize, package: usize) -> bool {
        let repo = PACKAGES[package].repo;
        self.packages[package].live() && self.repo_live(repo) && role(user, repo).is_some()
    }

    fn may(&self, user: usize, package: usize, needed: Role) -> bool {
        self.visible(user, package) && role(user, PACKAGES[package].repo) >= Some(needed)
    }

    fn retention_over(&self, life: &Life) -> bool {
        life.deleted_at
            .is_some_and(|at| at + RETENTION_DAYS * DAY <= self.hours)
    }

    /// What the purge takes once a deletion's retention has run out.
    fn purge(&mut self) {
        for ws in [Ws::Acme, Ws::Beta] {
            if self.retention_over(&self.workspaces[&ws]) {
                self.workspaces.get_mut(&ws).expect("ws").purged = true;
            }
        }
        for repo in 0..REPOS.len() {
            if self.retention_over(&self.repos[repo]) || self.workspaces[&Self::ws_of(repo)].purged
            {
                self.repos[repo].purged = true;
            }
        }
        for (package, spec) in PACKAGES.iter().enumerate() {
            if self.retention_over(&self.packages[package]) || self.repos[spec.repo].purged {
                self.packages[package].purged = true;
                self.content[package] = Content::default();
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    PushImage {
        user: usize,
        package: usize,
        tag: u8,
        image: ImageKey,
    },
    DeleteManifest {
        user: usize,
        package: usize,
        image: ImageKey,
    },
    Publish {
        user: usize,
        package: usize,
        version: u8,
        variant: u8,
    },
    Unpublish {
        user: usize,
        package: usize,
        version: u8,
    },
    /// A document update that drops every version (`{"versions": {}}`).
    EmptyDocument {
        user: usize,
        package: usize,
    },
    /// A document update that adds a version without its tarball.
    VersionWithoutTarball {
        user: usize,
        package: usize,
    },
    Deploy {
        user: usize,
        version: u8,
        variant: u8,
    },
    DeleteMavenVersion {
        user: usize,
        version: u8,
    },
    DeletePackage {
        user: usize,
        package: usize,
    },
    RestorePackage {
        user: usize,
        package: usize,
    },
    DeleteRepository {
        user: usize,
        repo: usize,
    },
    RestoreRepository {
        user: usize,
        repo: usize,
    },
    DeleteWorkspace {
        user: usize,
        ws: Ws,
    },
    RestoreWorkspace {
        user: usize,
        ws: Ws,
    },
    /// Every writer of a container package pushes the same image under the same tag, at once.
    ParallelPushes {
        package: usize,
        tag: u8,
        image: ImageKey,
    },
    /// Both npm packages of acme get the same tarball bytes as a version, at once.
    ParallelPublishes {
        version: u8,
    },
    /// Dist-tags are put on a version while its workspace's admin unpublishes it (again, as
    /// npm's user would, when told the package changed meanwhile).
    TagsRacingUnpublish {
        package: usize,
        version: u8,
    },
    /// Two hours pass, and a purge run dies at its first delete of an object (a crash, say);
    /// the next run follows.
    InterruptedPurge,
    /// Time passes, and the purge runs (twice, a grace period apart).
    Later {
        hours: i64,
    },
}

struct World;

impl ReferenceStateMachine for World {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model {
            hours: 0,
            workspaces: [(Ws::Acme, Life::default()), (Ws::Beta, Life::default())].into(),
            repos: vec![Life::default(); REPOS.len()],
            packages: vec![Life::default(); PACKAGES.len()],
            content: vec![Content::default(); PACKAGES.len()],
            expect: Expect::Ok,
        })
        .boxed()
    }

    fn transitions(_: &Model) -> BoxedStrategy<Step> {
        let user = 0..USERS.len();
        let container = proptest::sample::select(CONTAINERS.to_vec());
        let npm = proptest::sample::select(NPMS.to_vec());
        let image = (0u8..2, proptest::bool::weighted(0.3));
        let ws = prop_oneof![Just(Ws::Acme), Just(Ws::Beta)];
        prop_oneof![
            6 => (user.clone(), container.clone(), 0u8..2, image.clone())
                .prop_map(|(user, package, tag, image)| Step::PushImage { user, package, tag, image }),
            3 => (user.clone(), container.clone(), image)
                .prop_map(|(user, package, image)| Step::DeleteManifest { user, package, image }),
            5 => (user.clone(), npm.clone(), 0u8..3, 0u8..2)
                .prop_map(|(user, package, version, variant)| Step::Publish { user, package, version, variant }),
            3 => (user.clone(), npm.clone(), 0u8..3)
                .prop_map(|(user, package, version)| Step::Unpublish { user, package, version }),
            2 => (user.clone(), npm.clone())
                .prop_map(|(user, package)| Step::EmptyDocument { user, package }),
            1 => (user.clone(), npm.clone())
                .prop_map(|(user, package)| Step::VersionWithoutTarball { user, package }),
            3 => (user.clone(), 0u8..3, 0u8..2)
                .prop_map(|(user, version, variant)| Step::Deploy { user, version, variant }),
            2 => (user.clone(), 0u8..3)
                .prop_map(|(user, version)| Step::DeleteMavenVersion { user, version }),
            2 => (user.clone(), 0..PACKAGES.len())
                .prop_map(|(user, package)| Step::DeletePackage { user, package }),
            2 => (user.clone(), 0..PACKAGES.len())
                .prop_map(|(user, package)| Step::RestorePackage { user, package }),
            1 => (user.clone(), 0..REPOS.len())
                .prop_map(|(user, repo)| Step::DeleteRepository { user, repo }),
            1 => (user.clone(), 0..REPOS.len())
                .prop_map(|(user, repo)| Step::RestoreRepository { user, repo }),
            1 => (user.clone(), ws.clone())
                .prop_map(|(user, ws)| Step::DeleteWorkspace { user, ws }),
            1 => (user, ws).prop_map(|(user, ws)| Step::RestoreWorkspace { user, ws }),
            2 => prop_oneof![Just(2i64), Just(12 * DAY), Just(31 * DAY)]
                .prop_map(|hours| Step::Later { hours }),
            2 => (container, 0u8..2, (0u8..2, proptest::bool::weighted(0.3)))
                .prop_map(|(package, tag, image)| Step::ParallelPushes { package, tag, image }),
            1 => (0u8..3).prop_map(|version| Step::ParallelPublishes { version }),
            2 => (npm.clone(), 0u8..3)
                .prop_map(|(package, version)| Step::TagsRacingUnpublish { package, version }),
            1 => Just(Step::InterruptedPurge),
        ]
        .boxed()
    }

    fn apply(mut model: Model, step: &Step) -> Model {
        model.expect = match *step {
            Step::PushImage {
                user,
                package,
                tag,
                image,
            } => {
                if model.may(user, package, Role::Write) {
                    let content = &mut model.content[package];
                    content.manifests.insert(image);
                    content.tags.insert(tag, image);
                    Expect::Ok
                } else {
                    Expect::Denied
                }
            }
            Step::DeleteManifest {
                user,
                package,
                image,
            } => {
                if !model.may(user, package, Role::Write) {
                    Expect::Denied
                } else if model.content[package].manifests.remove(&image) {
                    model.content[package].tags.retain(|_, i| *i != image);
                    Expect::Ok
                } else {
                    Expect::NotFound
                }
            }
            Step::Publish {
                user,
                package,
                version,
                variant,
            } => {
                let content = &model.content[package];
                if !model.may(user, package, Role::Write) {
                    Expect::Denied
                } else if content.versions.contains_key(&version)
                    || content.retired.contains(&version)
                {
                    Expect::Conflict
                } else {
                    model.content[package].versions.insert(version, variant);
                    Expect::Ok
                }
            }
            Step::Unpublish {
                user,
                package,
                version,
            } => {
                let content = &model.content[package];
                let last = content.versions.len() == 1 && content.versions.contains_key(&version);
                if !model.visible(user, package) {
                    Expect::Denied
                } else if !content.versions.contains_key(&version) {
                    // npm stops at the document it read: no such version.
                    Expect::NotFound
                } else if !model.may(user, package, Role::Write)
                    || (last && !model.may(user, package, Role::Admin))
                {
                    Expect::Denied
                } else {
                    let content = &mut model.content[package];
                    if content.versions.remove(&version).is_some() {
                        content.retired.insert(version);
                    }
                    Expect::Ok
                }
            }
            Step::EmptyDocument { user, package } => {
                let empty = model.content[package].versions.is_empty();
                if !model.may(user, package, Role::Write) {
                    Expect::Denied
                } else if empty {
                    // Nothing to read the revision of: the document is 404.
                    Expect::NotFound
                } else if !model.may(user, package, Role::Admin) {
                    Expect::Denied
                } else {
                    let content = &mut model.content[package];
                    let versions = std::mem::take(&mut content.versions);
                    content.retired.extend(versions.into_keys());
                    Expect::Ok
                }
            }
            Step::VersionWithoutTarball { user, package } => {
                if !model.may(user, package, Role::Write) {
                    Expect::Denied
                } else if model.content[package].versions.is_empty() {
                    Expect::NotFound
                } else {
                    Expect::BadRequest
                }
            }
            Step::Deploy {
                user,
                version,
                variant,
            } => {
                let content = &model.content[MAVEN];
                if !model.may(user, MAVEN, Role::Write) {
                    Expect::Denied
                } else if content.versions.contains_key(&version)
                    || content.retired.contains(&version)
                {
                    Expect::Conflict
                } else {
                    model.content[MAVEN].versions.insert(version, variant);
                    Expect::Ok
                }
            }
            Step::DeleteMavenVersion { user, version } => {
                if !model.may(user, MAVEN, Role::Write) {
                    Expect::Denied
                } else if model.content[MAVEN].versions.remove(&version).is_some() {
                    model.content[MAVEN].retired.insert(version);
                    Expect::Ok
                } else {
                    Expect::NotFound
                }
            }
            Step::DeletePackage { user, package } => {
                if model.may(user, package, Role::Admin) {
                    model.packages[package].deleted_at = Some(model.hours);
                    Expect::Ok
                } else {
                    Expect::Denied
                }
            }
            Step::RestorePackage { user, package } => {
                let repo = PACKAGES[package].repo;
                let life = &model.packages[package];
                if life.purged || !model.repo_live(repo) || role(user, repo) != Some(Role::Admin) {
                    Expect::Denied
                } else if life.deleted_at.is_none() {
                    Expect::Conflict
                } else {
                    model.packages[package].deleted_at = None;
                    Expect::Ok
                }
            }
            Step::DeleteRepository { user, repo } => {
                if model.repo_live(repo) && role(user, repo) == Some(Role::Admin) {
                    model.repos[repo].deleted_at = Some(model.hours);
                    Expect::Ok
                } else {
                    Expect::Denied
                }
            }
            Step::RestoreRepository { user, repo } => {
                let ws = Model::ws_of(repo);
                let life = &model.repos[repo];
                if life.purged
                    || !model.workspaces[&ws].live()
                    || role(user, repo) != Some(Role::Admin)
                {
                    Expect::Denied
                } else if life.deleted_at.is_none() {
                    Expect::Conflict
                } else {
                    model.repos[repo].deleted_at = None;
                    Expect::Ok
                }
            }
            Step::DeleteWorkspace { user, ws } => {
                if user == workspace_admin(ws) && model.workspaces[&ws].live() {
                    model.workspaces.get_mut(&ws).expect("ws").deleted_at = Some(model.hours);
                    Expect::Ok
                } else {
                    Expect::Denied
                }
            }
            Step::RestoreWorkspace { user, ws } => {
                let life = &model.workspaces[&ws];
                if user != workspace_admin(ws) || life.purged {
                    Expect::Denied
                } else if life.deleted_at.is_none() {
                    Expect::Conflict
                } else {
                    model.workspaces.get_mut(&ws).expect("ws").deleted_at = None;
                    Expect::Ok
                }
            }
            Step::ParallelPushes {
                package,
                tag,
                image,
            } => {
                if !writers(package).is_empty()
                    && model.may(writers(package)[0], package, Role::Write)
                {
                    let content = &mut model.content[package];
                    content.manifests.insert(image);
                    content.tags.insert(tag, image);
                    Expect::Ok
                } else {
                    Expect::Denied
                }
            }
            Step::ParallelPublishes { version } => {
                for package in NPMS {
                    let content = &model.content[package];
                    let fresh = !content.versions.contains_key(&version)
                        && !content.retired.contains(&version);
                    if model.may(0, package, Role::Write) && fresh {
                        model.content[package]
                            .versions
                            .insert(version, SHARED_VARIANT);
                    }
                }
                Expect::Ok
            }
            Step::TagsRacingUnpublish { package, version } => {
                if !model.visible(0, package) {
                    Expect::Denied
                } else if !model.content[package].versions.contains_key(&version) {
                    Expect::NotFound
                } else {
                    let content = &mut model.content[package];
                    content.versions.remove(&version);
                    content.retired.insert(version);
                    Expect::Ok
                }
            }
            Step::InterruptedPurge => {
                model.hours += 2;
                model.purge();
                Expect::Ok
            }
            Step::Later { hours } => {
                model.hours += hours + 2;
                model.purge();
                Expect::Ok
            }
        };
        model
    }
}

// ---------------------------------------------------------------------------------------------
// The system: a test server on fresh stores.

struct System {
    server: TestServer,
    tokens: Vec<String>,
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fn api_kind(kind: Kind) -> &'static str {
    match kind {
        Kind::Container => "container",
        Kind::Npm => "npm",
        Kind::Maven => "maven",
    }
}

fn package_path(package: usize) -> String {
    let spec = &PACKAGES[package];
    let ws = REPOS[spec.repo].0.slug();
    format!(
        "/api/workspaces/{ws}/packages/{}/{}",
        api_kind(spec.kind),
        spec.name.replace('/', "%2F")
    )
}

/// The blobs and manifest of an image: the same bytes wherever it is pushed.
fn image_of((image, large): ImageKey) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let config = json!({ "architecture": "amd64", "os": "linux", "image": image }).to_string();
    let layer = vec![image + 1; 64];
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(config.as_bytes()), "size": config.len() },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha256(&layer), "size": layer.len() }],
    });
    if large {
        // Too large for a metadata record: kept in the blob store.
        manifest["annotations"] = json!({ "filler": "x".repeat(320 * 1024) });
    }
    (
        config.into_bytes(),
        layer,
        manifest.to_string().into_bytes(),
    )
}

fn tarball_of(package: usize, version: u8, variant: u8) -> Vec<u8> {
    if variant == SHARED_VARIANT {
        return format!("shared {version}").into_bytes();
    }
    format!("{} {version} {variant}", PACKAGES[package].name).into_bytes()
}

fn jar_of(version: u8, variant: u8) -> Vec<u8> {
    format!("jar {version} {variant}").into_bytes()
}

fn npm_version(version: u8) -> String {
    format!("1.{version}.0")
}

fn maven_version(version: u8) -> String {
    format!("1.{version}")
}

/// The class of an answer; `None` for one no step may give (a 500, say).
fn class_of(status: u16) -> Option<Expect> {
    match status {
        200..=299 => Some(Expect::Ok),
        403 => Some(Expect::Denied),
        404 => Some(Expect::NotFound),
        409 => Some(Expect::Conflict),
        400 => Some(Expect::BadRequest),
        _ => None,
    }
}

fn matches(expected: Expect, status: u16) -> bool {
    let got = class_of(status);
    got == Some(expected) || (expected == Expect::Denied && got == Some(Expect::NotFound))
}

impl System {
    async fn start(backend: Backend) -> Self {
        let stores = Stores::new(backend).await.expect("stores");
        let settings = Settings {
            collection_grace: chrono::Duration::hours(1),
            ..Settings::default()
        };
        let server = TestServer::start_with(stores, settings, Limits::local(64 << 20)).await;
        let mut tokens = Vec::new();
        for user in USERS {
            tokens.push(
                server
                    .user_with_token(user, &["read:package", "write:package"])
                    .await,
            );
        }
        for ws in [Ws::Acme, Ws::Beta] {
            let admin = workspace_admin(ws);
            let (status, _) = server
                .call(
                    "POST",
                    "/api/workspaces",
                    Auth::Bearer(&tokens[admin]),
                    Some(json!({"slug": ws.slug(), "plan": "standard"})),
                )
                .await;
            assert_eq!(status, 201);
        }
        for (repo, (ws, slug)) in REPOS.iter().enumerate() {
            let admin = &tokens[workspace_admin(*ws)];
            let (status, _) = server
                .call(
                    "POST",
                    &format!("/api/workspaces/{}/repositories", ws.slug()),
                    Auth::Bearer(admin),
                    Some(json!({"slug": slug})),
                )
                .await;
            assert_eq!(status, 201);
            for (user, name) in USERS.iter().enumerate() {
                let granted = match role(user, repo) {
                    Some(Role::Read) => "read",
                    Some(Role::Write) => "write",
                    _ => continue,
                };
                let (status, _) = server
                    .call(
                        "PUT",
                        &format!(
                            "/api/workspaces/{}/repositories/{slug}/permissions/{name}",
                            ws.slug(),
                        ),
                        Auth::Bearer(admin),
                        Some(json!({ "role": granted })),
                    )
                    .await;
                assert_eq!(status, 201);
            }
        }
        for spec in &PACKAGES {
            let (ws, repo) = REPOS[spec.repo];
            let admin = &tokens[workspace_admin(ws)];
            let (status, body) = server
                .call(
                    "POST",
                    &format!("/api/workspaces/{}/packages", ws.slug()),
                    Auth::Bearer(admin),
                    Some(
                        json!({"type": api_kind(spec.kind), "name": spec.name, "repository": repo}),
                    ),
                )
                .await;
            assert_eq!(status, 201, "{body}");
        }
        Self { server, tokens }
    }

    fn auth(&self, user: usize) -> Auth<'_> {
        Auth::Basic(USERS[user], &self.tokens[user])
    }

    async fn send(
        &self,
        user: usize,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        content_type: &str,
    ) -> u16 {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .server
            .client
            .request(method, format!("{}{path}", self.server.url))
            .basic_auth(USERS[user], Some(&self.tokens[user]));
        if let Some(body) = body {
            request = request.header("content-type", content_type).body(body);
        }
        request.send().await.expect("request").status().as_u16()
    }

    fn oci_name(package: usize) -> String {
        let spec = &PACKAGES[package];
        format!("{}/{}", REPOS[spec.repo].0.slug(), spec.name)
    }

    fn npm_path(package: usize) -> String {
        let spec = &PACKAGES[package];
        format!("/npm/{}/{}", REPOS[spec.repo].0.slug(), encoded(spec.name))
    }

    async fn push_image(&self, user: usize, package: usize, tag: u8, image: ImageKey) -> u16 {
        let name = Self::oci_name(package);
        let (config, layer, manifest) = image_of(image);
        for blob in [&config, &layer] {
            let status = self
                .send(
                    user,
                    "POST",
                    &format!("/v2/{name}/blobs/uploads/?digest={}", sha256(blob)),
                    Some(blob.clone()),
                    "application/octet-stream",
                )
                .await;
            if status != 201 {
                return status;
            }
        }
        self.send(
            user,
            "PUT",
            &format!("/v2/{name}/manifests/t{tag}"),
            Some(manifest),
            OCI_MANIFEST,
        )
        .await
    }

    /// npm's `unpublish name@version`: the document read for writing, put back without the
    /// version, then the tarball deleted.
    async fn unpublish(&self, user: usize, package: usize, version: u8) -> u16 {
        let path = Self::npm_path(package);
        let (status, mut document) = self
            .server
            .call("GET", &format!("{path}?write=true"), self.auth(user), None)
            .await;
        if status != 200 {
            return status.as_u16();
        }
        let version = npm_version(version);
        let rev = document["_rev"].as_str().expect("rev").to_owned();
        let versions = document["versions"].as_object_mut().expect("versions");
        if versions.remove(&version).is_none() {
            return 404;
        }
        let remaining: Vec<String> = versions.keys().cloned().collect();
        // As npm does: the last version goes with the whole package.
        let Some(highest) = remaining.iter().max_by_key(|v| semver_key(v)).cloned() else {
            let (status, _) = self
                .server
                .call(
                    "DELETE",
                    &format!("{path}/-rev/{rev}"),
                    self.auth(user),
                    None,
                )
                .await;
            return status.as_u16();
        };
        document["dist-tags"] = json!({ "latest": highest });
        let (status, _) = self
            .server
            .call(
                "PUT",
                &format!("{path}/-rev/{rev}"),
                self.auth(user),
                Some(document),
            )
            .await;
        if status != 200 {
            return status.as_u16();
        }
        let bare = PACKAGES[package].name.rsplit('/').next().expect("name");
        let (status, _) = self
            .server
            .call(
                "DELETE",
                &format!("{path}/-/{bare}-{version}.tgz/-rev/{rev}"),
                self.auth(user),
                None,
            )
            .await;
        status.as_u16()
    }

    /// A document update of what the package holds, changed by `change`.
    async fn hostile_update(&self, user: usize, package: usize, change: fn(&mut Value)) -> u16 {
        let path = Self::npm_path(package);
        let (status, mut document) = self
            .server
            .call("GET", &format!("{path}?write=true"), self.auth(user), None)
            .await;
        if status != 200 {
            return status.as_u16();
        }
        let rev = document["_rev"].as_str().expect("rev").to_owned();
        change(&mut document);
        let (status, _) = self
            .server
            .call(
                "PUT",
                &format!("{path}/-rev/{rev}"),
                self.auth(user),
                Some(document),
            )
            .await;
        status.as_u16()
    }

    async fn apply(&self, step: &Step) -> Option<u16> {
        let maven = "/maven/acme/com/acme/app";
        Some(match *step {
            Step::PushImage {
                user,
                package,
                tag,
                image,
            } => self.push_image(user, package, tag, image).await,
            Step::DeleteManifest {
                user,
                package,
                image,
            } => {
                let (_, _, manifest) = image_of(image);
                self.send(
                    user,
                    "DELETE",
                    &format!(
                        "/v2/{}/manifests/{}",
                        Self::oci_name(package),
                        sha256(&manifest)
                    ),
                    None,
                    "",
                )
                .await
            }
            Step::Publish {
                user,
                package,
                version,
                variant,
            } => {
                let name = PACKAGES[package].name;
                let document = publish_document(
                    name,
                    &npm_version(version),
                    &tarball_of(package, version, variant),
                );
                self.send(
                    user,
                    "PUT",
                    &Self::npm_path(package),
                    Some(document.to_string().into_bytes()),
                    "application/json",
                )
                .await
            }
            Step::Unpublish {
                user,
                package,
                version,
            } => self.unpublish(user, package, version).await,
            Step::EmptyDocument { user, package } => {
                self.hostile_update(user, package, |document| {
                    document["versions"] = json!({});
                })
                .await
            }
            Step::VersionWithoutTarball { user, package } => {
                self.hostile_update(user, package, |document| {
                    let name = document["name"].clone();
                    document["versions"]["9.9.9"] = json!({ "name": name, "version": "9.9.9" });
                    document["_attachments"] = json!({});
                })
                .await
            }
            Step::Deploy {
                user,
                version,
                variant,
            } => {
                let name = maven_version(version);
                self.send(
                    user,
                    "PUT",
                    &format!("{maven}/{name}/app-{name}.jar"),
                    Some(jar_of(version, variant)),
                    "application/java-archive",
                )
                .await
            }
            Step::DeleteMavenVersion { user, version } => {
                self.send(
                    user,
                    "DELETE",
                    &format!("{maven}/{}/", maven_version(version)),
                    None,
                    "",
                )
                .await
            }
            Step::DeletePackage { user, package } => self
                .server
                .call("DELETE", &package_path(package), self.auth(user), None)
                .await
                .0
                .as_u16(),
            Step::RestorePackage { user, package } => {
                let path = format!("{}/restore", package_path(package));
                self.server
                    .call("POST", &path, self.auth(user), None)
                    .await
                    .0
                    .as_u16()
            }
            Step::DeleteRepository { user, repo } => {
                let (ws, slug) = REPOS[repo];
                let path = format!("/api/workspaces/{}/repositories/{slug}", ws.slug());
                self.server
                    .call("DELETE", &path, self.auth(user), None)
                    .await
                    .0
                    .as_u16()
            }
            Step::RestoreRepository { user, repo } => {
                let (ws, slug) = REPOS[repo];
                let path = format!("/api/workspaces/{}/repositories/{slug}/restore", ws.slug());
                self.server
                    .call("POST", &path, self.auth(user), None)
                    .await
                    .0
                    .as_u16()
            }
            Step::DeleteWorkspace { user, ws } => {
                let path = format!("/api/workspaces/{}", ws.slug());
                self.server
                    .call("DELETE", &path, self.auth(user), None)
                    .await
                    .0
                    .as_u16()
            }
            Step::RestoreWorkspace { user, ws } => {
                let path = format!("/api/workspaces/{}/restore", ws.slug());
                self.server
                    .call("POST", &path, self.auth(user), None)
                    .await
                    .0
                    .as_u16()
            }
            Step::ParallelPushes {
                package,
                tag,
                image,
            } => {
                let pushes = writers(package)
                    .into_iter()
                    .cycle()
                    .take(6)
                    .map(|user| self.push_image(user, package, tag, image));
                let statuses = futures_util::future::join_all(pushes).await;
                // Refusals differ by caller: a writer who could read a deleted package is
                // told it was deleted (404), one who could not that there is nothing (403).
                let refused = |s: u16| matches!(s, 403 | 404);
                assert!(
                    statuses
                        .iter()
                        .all(|s| *s == statuses[0] || (refused(*s) && refused(statuses[0]))),
                    "parallel pushes answered {statuses:?}"
                );
                statuses[0]
            }
            Step::ParallelPublishes { version } => {
                let publishes = NPMS.map(|package| {
                    let document = publish_document(
                        PACKAGES[package].name,
                        &npm_version(version),
                        &tarball_of(package, version, SHARED_VARIANT),
                    );
                    let body = Some(document.to_string().into_bytes());
                    async move {
                        self.send(0, "PUT", &Self::npm_path(package), body, "application/json")
                            .await
                    }
                });
                for status in futures_util::future::join_all(publishes).await {
                    assert!(
                        matches!(status, 201 | 409 | 403 | 404),
                        "parallel publish: {status}"
                    );
                }
                200
            }
            Step::TagsRacingUnpublish { package, version } => {
                let path = format!(
                    "/npm/{}/-/package/{}/dist-tags",
                    REPOS[PACKAGES[package].repo].0.slug(),
                    encoded(PACKAGES[package].name)
                );
                // The removal is held up a moment, as a slow store would, so that tags land
                // between the unpublish's read and its write.
                self.server
                    .metadata_pauses
                    .pause_deletes(Some(("VERSION#", Duration::from_millis(100))));
                let tags = (0..3).map(|i| {
                    let (path, body) = (
                        format!("{path}/next{i}"),
                        Some(Value::String(npm_version(version)).to_string().into_bytes()),
                    );
                    async move {
                        tokio::time::sleep(Duration::from_millis(30 + 20 * i)).await;
                        self.send(0, "PUT", &path, body, "application/json").await
                    }
                });
                let unpublish = async {
                    loop {
                        match self.unpublish(0, package, version).await {
                            409 => continue,
                            status => return status,
                        }
                    }
                };
                let (tagged, unpublished) =
                    tokio::join!(futures_util::future::join_all(tags), unpublish);
                self.server.metadata_pauses.pause_deletes(None);
                for status in tagged {
                    assert!(matches!(status, 201 | 404 | 409 | 403), "tag: {status}");
                }
                unpublished
            }
            Step::InterruptedPurge => {
                self.server.clock.advance(chrono::Duration::hours(2));
                self.server.blob_faults.fail_deletes(1);
                drop(
                    self.server
                        .registry
                        .purge(&stowage_purge::Content, Duration::from_secs(120))
                        .await,
                );
                self.server.blob_faults.fail_deletes(0);
                // The next run, after the crash.
                self.purge().await;
                return None;
            }
            Step::Later { hours } => {
                self.server.clock.advance(chrono::Duration::hours(hours));
                self.purge().await;
                self.server.clock.advance(chrono::Duration::hours(2));
                self.purge().await;
                return None;
            }
        })
    }

    /// Every object in the blob store is named by a blob's record, or by a collection under
    /// way (a run that died while deleting it leaves that), or is a package's deleted copy
    /// not yet collected: nothing is orphaned.
    async fn check_no_orphans(&self) {
        use stowage_service::inspect::{BlobRecord, decode};
        let metadata = self.server.registry.inspect_metadata();
        let mut named = BTreeSet::new();
        for ws in [Ws::Acme, Ws::Beta] {
            for partition in [format!("BLOBS#{}", ws.slug()), format!("GC#{}", ws.slug())] {
                let page = metadata
                    .query(&stowage_storage::Query::prefix(partition.clone(), "", 1000))
                    .await
                    .expect("query");
                for item in page.items {
                    if partition.starts_with("BLOBS#") {
                        named.insert(decode::<BlobRecord>(&item).expect("blob").object_key);
                    } else {
                        let candidate: stowage_service::GcCandidate =
                            decode(&item).expect("candidate");
                        if candidate.deleting {
                            named.insert(candidate.object_key);
                        }
                    }
                }
            }
        }
        let listed = self
            .server
            .registry
            .inspect_blobs()
            .list_objects("ws/", None, 10_000)
            .await
            .expect("list");
        for object in listed.objects {
            assert!(
                named.contains(&object.key),
                "an object no record names: {}",
                object.key
            );
        }
    }

    async fn purge(&self) {
        let report = self
            .server
            .registry
            .purge(&stowage_purge::Content, Duration::from_secs(120))
            .await
            .expect("purge");
        assert!(report.finished, "{report:?}");
    }

    /// Every user sees exactly the packages the model says, in every workspace.
    async fn check_visibility(&self, model: &Model) {
        for (user, name) in USERS.iter().enumerate() {
            for ws in [Ws::Acme, Ws::Beta] {
                let (status, body) = self
                    .server
                    .call(
                        "GET",
                        &format!("/api/workspaces/{}/packages", ws.slug()),
                        self.auth(user),
                        None,
                    )
                    .await;
                let listed: BTreeSet<String> = body["values"]
                    .as_array()
                    .map(|values| {
                        values
                            .iter()
                            .map(|p| {
                                format!(
                                    "{}:{}",
                                    p["type"].as_str().unwrap_or(""),
                                    p["name"].as_str().unwrap_or("")
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let expected: BTreeSet<String> = (0..PACKAGES.len())
                    .filter(|p| REPOS[PACKAGES[*p].repo].0 == ws && model.visible(user, *p))
                    .map(|p| format!("{}:{}", api_kind(PACKAGES[p].kind), PACKAGES[p].name))
                    .collect();
                if model.workspaces[&ws].live() && model.member(user, ws) {
                    assert_eq!(status, 200, "{} lists {}", name, ws.slug());
                    assert_eq!(listed, expected, "{} lists {}", name, ws.slug());
                } else {
                    assert!(listed.is_empty(), "{} lists {}: {body}", name, ws.slug());
                }
            }
        }
    }

    /// What the model says is published can be read, exactly, by its workspace's admin.
    async fn check_content(&self, model: &Model) {
        for package in 0..PACKAGES.len() {
            let admin = workspace_admin(REPOS[PACKAGES[package].repo].0);
            if !model.visible(admin, package) {
                continue;
            }
            let content = &model.content[package];
            match PACKAGES[package].kind {
                Kind::Container => {
                    for (tag, image) in &content.tags {
                        let (_, _, manifest) = image_of(*image);
                        let response = self
                            .server
                            .client
                            .get(format!(
                                "{}/v2/{}/manifests/t{tag}",
                                self.server.url,
                                Self::oci_name(package)
                            ))
                            .basic_auth(USERS[admin], Some(&self.tokens[admin]))
                            .header("accept", OCI_MANIFEST)
                            .send()
                            .await
                            .expect("GET");
                        assert_eq!(response.status(), 200, "{} t{tag}", Self::oci_name(package));
                        let bytes = response.bytes().await.expect("body");
                        assert_eq!(
                            sha256(&bytes),
                            sha256(&manifest),
                            "{} t{tag}",
                            Self::oci_name(package)
                        );
                        let (config, layer, _) = image_of(*image);
                        for blob in [config, layer] {
                            let status = self
                                .send(
                                    admin,
                                    "HEAD",
                                    &format!(
                                        "/v2/{}/blobs/{}",
                                        Self::oci_name(package),
                                        sha256(&blob)
                                    ),
                                    None,
                                    "",
                                )
                                .await;
                            assert_eq!(
                                status,
                                200,
                                "{} t{tag}: a blob it uses",
                                Self::oci_name(package)
                            );
                        }
                    }
                }
                Kind::Npm => {
                    let (status, document) = self
                        .server
                        .call("GET", &Self::npm_path(package), self.auth(admin), None)
                        .await;
                    let versions: BTreeSet<String> = document["versions"]
                        .as_object()
                        .map(|v| v.keys().cloned().collect())
                        .unwrap_or_default();
                    let expected: BTreeSet<String> =
                        content.versions.keys().map(|v| npm_version(*v)).collect();
                    assert_eq!(versions, expected, "{} ({status})", PACKAGES[package].name);
                    for (tag, target) in document["dist-tags"].as_object().into_iter().flatten() {
                        let target = target.as_str().unwrap_or("");
                        assert!(
                            versions.contains(target),
                            "{}: {tag} -> {target}, which is gone",
                            PACKAGES[package].name
                        );
                    }
                    for (version, variant) in &content.versions {
                        let shasum =
                            hex::encode(Sha1::digest(tarball_of(package, *version, *variant)));
                        assert_eq!(
                            document["versions"][npm_version(*version)]["dist"]["shasum"],
                            shasum.as_str()
                        );
                    }
                }
                Kind::Maven => {
                    for (version, variant) in &content.versions {
                        let version_name = maven_version(*version);
                        let response = self
                            .server
                            .client
                            .head(format!(
                                "{}/maven/acme/com/acme/app/{version_name}/app-{version_name}.jar",
                                self.server.url
                            ))
                            .basic_auth(USERS[admin], Some(&self.tokens[admin]))
                            .send()
                            .await
                            .expect("HEAD");
                        assert_eq!(response.status(), 200, "jar {version_name}");
                        let sha1 = hex::encode(Sha1::digest(jar_of(*version, *variant)));
                        assert_eq!(response.headers()["x-checksum-sha1"], sha1.as_str());
                    }
                }
            }
        }
    }

    /// Someone with no role on a package learns nothing of it: deleting or restoring it
    /// answers exactly as for a package that never existed.
    async fn check_existence_hiding(&self, model: &Model) {
        let dave = 4;
        for package in 0..PACKAGES.len() {
            if model.visible(dave, package) || model.packages[package].purged {
                continue;
            }
            for (method, suffix) in [("DELETE", ""), ("POST", "/restore")] {
                let existing = self
                    .server
                    .call(
                        method,
                        &format!("{}{suffix}", package_path(package)),
                        self.auth(dave),
                        None,
                    )
                    .await;
                let missing = self
                    .server
                    .call(
                        method,
                        &format!("{}-none{suffix}", package_path(package)),
                        self.auth(dave),
                        None,
                    )
                    .await;
                assert_eq!(existing, missing, "{method} {}", package_path(package));
            }
        }
    }
}

fn semver_key(version: &str) -> Vec<u64> {
    version
        .split('.')
        .filter_map(|part| part.parse().ok())
        .collect()
}

struct Registry<const AWS: bool>;

impl<const AWS: bool> StateMachineTest for Registry<AWS> {
    type SystemUnderTest = System;
    type Reference = World;

    fn init_test(_: &Model) -> System {
        let backend = if AWS { Backend::Aws } else { Backend::Embedded };
        runtime().block_on(System::start(backend))
    }

    fn apply(system: System, model: &Model, step: Step) -> System {
        let status = runtime().block_on(system.apply(&step));
        if let Some(status) = status {
            assert!(
                matches(model.expect, status),
                "{step:?}: expected {:?}, got {status}",
                model.expect
            );
        }
        system
    }

    fn check_invariants(system: &System, model: &Model) {
        runtime().block_on(async {
            system.check_visibility(model).await;
            system.check_content(model).await;
            system.check_existence_hiding(model).await;
            system.check_no_orphans().await;
        });
    }
}

/// How many sequences each storage pair runs (`STOWAGE_MODEL_CASES` overrides).
fn config(cases: u32) -> Config {
    Config {
        cases: std::env::var("STOWAGE_MODEL_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(cases),
        failure_persistence: None,
        max_shrink_iters: 256,
        ..Config::default()
    }
}

prop_state_machine! {
    #![proptest_config(config(16))]
    #[test]
    fn random_histories_keep_the_model_on_embedded_storage(sequential 1..30 => Registry<false>);
}

prop_state_machine! {
    #![proptest_config(config(5))]
    #[test]
    fn random_histories_keep_the_model_on_dynamodb_and_s3(sequential 1..30 => Registry<true>);
}
