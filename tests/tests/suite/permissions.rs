//! The permission rules as a table: role × token scope × pipeline token × operation, on both
//! storage pairs. Expectations are written out, not computed.

use std::collections::HashMap;

use http::StatusCode;
use serde_json::json;
use stowage_domain::{PackageName, PackageType, Role, Slug};
use stowage_service::Error;
use stowage_tests::{Auth, Stores, TestServer, on_both_backends};

on_both_backends!(
    permission_table,
    a_name_purged_and_taken_in_another_repository_follows_its_new_repository
);

/// Who calls: a user's token (with both scopes, or read-only), or a pipeline's.
struct Caller {
    name: String,
    auth: (String, String),
}

/// One row: the caller, its access (R, W, A or -) to the package in `api` and to the one in
/// `web`, then the HTTP statuses of management operations.
struct Row {
    caller: &'static str,
    api_package: &'static str,
    web_package: &'static str,
    create_package_in_api: u16,
    pipeline_token_for_api: u16,
    get_workspace: u16,
    create_workspace: u16,
    /// Packages listed, or the status when listing is refused.
    list_packages: Result<usize, u16>,
}

const TABLE: &[Row] = &[
    Row {
        caller: "alice/rw",
        api_package: "RWA",
        web_package: "RWA",
        create_package_in_api: 201,
        pipeline_token_for_api: 201,
        get_workspace: 200,
        create_workspace: 201,
        list_packages: Ok(2),
    },
    Row {
        caller: "alice/r",
        api_package: "R--",
        web_package: "R--",
        create_package_in_api: 403,
        pipeline_token_for_api: 403,
        get_workspace: 200,
        create_workspace: 403,
        list_packages: Ok(2),
    },
    Row {
        caller: "bob/rw",
        api_package: "R--",
        web_package: "---",
        create_package_in_api: 403,
        pipeline_token_for_api: 403,
        get_workspace: 200,
        create_workspace: 201,
        list_packages: Ok(1),
    },
    Row {
        caller: "bob/r",
        api_package: "R--",
        web_package: "---",
        create_package_in_api: 403,
        pipeline_token_for_api: 403,
        get_workspace: 200,
        create_workspace: 403,
        list_packages: Ok(1),
    },
    Row {
        caller: "carol/rw",
        api_package: "RW-",
        web_package: "---",
        create_package_in_api: 403,
        pipeline_token_for_api: 403,
        get_workspace: 200,
        create_workspace: 201,
        list_packages: Ok(1),
    },
    Row {
        caller: "carol/r",
        api_package: "R--",
        web_package: "---",
        create_package_in_api: 403,
        pipeline_token_for_api: 403,
        get_workspace: 200,
        create_workspace: 403,
        list_packages: Ok(1),
    },
    Row {
        caller: "dave/rw",
        api_package: "RWA",
        web_package: "---",
        create_package_in_api: 201,
        pipeline_token_for_api: 201,
        get_workspace: 200,
        create_workspace: 201,
        list_packages: Ok(1),
    },
    Row {
        caller: "dave/r",
        api_package: "R--",
        web_package: "---",
        create_package_in_api: 403,
        pipeline_token_for_api: 403,
        get_workspace: 200,
        create_workspace: 403,
        list_packages: Ok(1),
    },
    Row {
        caller: "erin/rw",
        api_package: "---",
        web_package: "---",
        create_package_in_api: 404,
        pipeline_token_for_api: 404,
        get_workspace: 404,
        create_workspace: 201,
        list_packages: Err(404),
    },
    Row {
        caller: "pipeline/api",
        api_package: "RW-",
        web_package: "---",
        create_package_in_api: 403,
        pipeline_token_for_api: 403,
        get_workspace: 403,
        create_workspace: 403,
        list_packages: Ok(1),
    },
    Row {
        caller: "pipeline/web",
        api_package: "---",
        web_package: "RW-",
        create_package_in_api: 403,
        pipeline_token_for_api: 403,
        get_workspace: 403,
        create_workspace: 403,
        list_packages: Ok(1),
    },
];

async fn set_up(server: &TestServer) -> HashMap<String, Caller> {
    let alice_rw = server
        .user_with_token("alice", &["read:package", "write:package"])
        .await;
    server
        .package(&alice_rw, "acme", "api", "container", "api/server")
        .await;
    server
        .package(&alice_rw, "acme", "web", "container", "web/site")
        .await;
    let mut callers = HashMap::new();
    for (user, role) in [
        ("alice", None),
        ("bob", Some("read")),
        ("carol", Some("write")),
        ("dave", Some("admin")),
        ("erin", None),
    ] {
        let rw = if user == "alice" {
            alice_rw.clone()
        } else {
            server
                .user_with_token(user, &["read:package", "write:package"])
                .await
        };
        let r = server.token_for(user, &["read:package"]).await;
        if let Some(role) = role {
            let (status, _) = server
                .call(
                    "PUT",
                    &format!("/api/workspaces/acme/repositories/api/permissions/{user}"),
                    Auth::Bearer(&alice_rw),
                    Some(json!({ "role": role })),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED);
        }
        for (name, token) in [(format!("{user}/rw"), rw), (format!("{user}/r"), r)] {
            callers.insert(
                name.clone(),
                Caller {
                    name,
                    auth: (user.to_owned(), token),
                },
            );
        }
    }
    for repository in ["api", "web"] {
        let (status, body) = server
            .call(
                "POST",
                &format!("/api/workspaces/acme/repositories/{repository}/pipeline-tokens"),
                Auth::Bearer(&alice_rw),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let name = format!("pipeline/{repository}");
        let auth = (
            body["username"].as_str().expect("username").to_owned(),
            body["token"].as_str().expect("token").to_owned(),
        );
        callers.insert(name.clone(), Caller { name, auth });
    }
    callers
}

/// What `open_package` allowed, as the table writes it.
async fn package_access(server: &TestServer, caller: &Caller, path: &str) -> String {
    let principal = server
        .registry
        .authenticate(&stowage_service::Credential::Basic {
            username: caller.auth.0.clone(),
            secret: stowage_domain::TokenSecret::from_presented(caller.auth.1.clone()),
        })
        .await
        .expect("authenticate");
    let workspace = Slug::parse("ws", "acme").expect("slug");
    let name = PackageName::parse(PackageType::Container, "name", path).expect("name");
    let mut letters = String::new();
    for (role, letter) in [(Role::Read, 'R'), (Role::Write, 'W'), (Role::Admin, 'A')] {
        let outcome = server
            .registry
            .open_package(
                &principal,
                &workspace,
                PackageType::Container,
                &name,
                role,
                &[],
            )
            .await;
        letters.push(match outcome {
            Ok(_) => letter,
            // Unreadable packages look absent: 404 to readers, "an admin must create it" to
            // writers; a read-only token is told its scope.
            Err(Error::NotFound(_)) => {
                assert_eq!(
                    role,
                    Role::Read,
                    "{}: only reads are told 'not found'",
                    caller.name
                );
                '-'
            }
            Err(Error::Forbidden(message)) => {
                assert_ne!(role, Role::Read, "{}", caller.name);
                assert!(
                    message.contains("must create")
                        || message.contains("role")
                        || message.contains("read-only"),
                    "{message}"
                );
                '-'
            }
            Err(other) => panic!("{}: unexpected {other:?}", caller.name),
        });
    }
    letters
}

async fn permission_table(stores: Stores) {
    let server = TestServer::start(stores).await;
    let callers = set_up(&server).await;
    for (i, row) in TABLE.iter().enumerate() {
        let caller = &callers[row.caller];
        let auth = Auth::Basic(&caller.auth.0, &caller.auth.1);
        assert_eq!(
            package_access(&server, caller, "api/server").await,
            row.api_package,
            "{} on api/server",
            row.caller
        );
        assert_eq!(
            package_access(&server, caller, "web/site").await,
            row.web_package,
            "{} on web/site",
            row.caller
        );

        let (status, body) = server
            .call(
                "POST",
                "/api/workspaces/acme/packages",
                auth,
                Some(json!({"type": "npm", "name": format!("made-by-{i}"), "repository": "api"})),
            )
            .await;
        assert_eq!(
            status.as_u16(),
            row.create_package_in_api,
            "{} creates a package: {body}",
            row.caller
        );
        let (status, _) = server
            .call(
                "POST",
                "/api/workspaces/acme/repositories/api/pipeline-tokens",
                auth,
                Some(json!({})),
            )
            .await;
        assert_eq!(
            status.as_u16(),
            row.pipeline_token_for_api,
            "{} mints a pipeline token",
            row.caller
        );
        let (status, _) = server.call("GET", "/api/workspaces/acme", auth, None).await;
        assert_eq!(
            status.as_u16(),
            row.get_workspace,
            "{} reads the workspace",
            row.caller
        );
        let (status, _) = server
            .call(
                "POST",
                "/api/workspaces",
                auth,
                Some(json!({"slug": format!("ws-{i}"), "plan": "standard"})),
            )
            .await;
        assert_eq!(
            status.as_u16(),
            row.create_workspace,
            "{} creates a workspace",
            row.caller
        );
        let (status, body) = server
            .call("GET", "/api/workspaces/acme/packages", auth, None)
            .await;
        let listed = body["values"]
            .as_array()
            .map(|values| values.iter().filter(|p| p["type"] == "container").count());
        let outcome = if status == StatusCode::OK {
            Ok(listed.expect("list"))
        } else {
            Err(status.as_u16())
        };
        assert_eq!(
            outcome, row.list_packages,
            "{} lists container packages",
            row.caller
        );
        deleting_and_restoring_tell_outsiders_nothing(&server, caller, row).await;
    }
}

/// Deleting or restoring a package that exists (`web/site`) and one that does not
/// (`web/none`): a caller who cannot read the package gets the very same answer for both; one
/// who can read it but is not its admin is refused.
async fn deleting_and_restoring_tell_outsiders_nothing(
    server: &TestServer,
    caller: &Caller,
    row: &Row,
) {
    if row.web_package.contains('A') {
        return;
    }
    let auth = Auth::Basic(&caller.auth.0, &caller.auth.1);
    for (method, suffix) in [("DELETE", ""), ("POST", "/restore")] {
        let path = |name: &str| format!("/api/workspaces/acme/packages/container/{name}{suffix}");
        let existing = server.call(method, &path("web%2Fsite"), auth, None).await;
        let missing = server.call(method, &path("web%2Fnone"), auth, None).await;
        if row.web_package.contains('R') {
            assert_eq!(
                existing.0,
                StatusCode::FORBIDDEN,
                "{} {method} {:?}",
                row.caller,
                existing.1
            );
        } else {
            assert_eq!(
                existing, missing,
                "{} {method}: an unreadable package looks absent",
                row.caller
            );
        }
    }
}

/// Reads learn which repository a package is linked to; once the name is purged and created
/// again in another repository, access follows the new repository at once.
async fn a_name_purged_and_taken_in_another_repository_follows_its_new_repository(stores: Stores) {
    let server = TestServer::start(stores).await;
    let alice = server
        .user_with_token("alice", &["read:package", "write:package"])
        .await;
    let bob = server.user_with_token("bob", &["read:package"]).await;
    server
        .package(&alice, "acme", "api", "maven", "com.acme:lib")
        .await;
    let (status, _) = server
        .call(
            "POST",
            "/api/workspaces/acme/repositories",
            Auth::Bearer(&alice),
            Some(json!({"slug": "web"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = server
        .call(
            "PUT",
            "/api/workspaces/acme/repositories/api/permissions/bob",
            Auth::Bearer(&alice),
            Some(json!({"role": "read"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let jar = "/maven/acme/com/acme/lib/1.0/lib-1.0.jar";
    let put = server
        .request("PUT", jar, Auth::Basic("alice", &alice), Some("jar".into()))
        .await;
    assert_eq!(put.status(), StatusCode::CREATED);
    let head = |token: String, user: &'static str| {
        let server = &server;
        async move {
            server
                .request("HEAD", jar, Auth::Basic(user, &token), None)
                .await
                .status()
        }
    };
    assert_eq!(
        head(bob.clone(), "bob").await,
        StatusCode::OK,
        "bob reads api's package"
    );

    let (status, _) = server
        .call(
            "DELETE",
            "/api/workspaces/acme/packages/maven/com.acme:lib",
            Auth::Bearer(&alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    server.clock.advance(chrono::Duration::days(31));
    let report = server
        .registry
        .purge(&stowage_purge::Content, std::time::Duration::from_secs(60))
        .await
        .expect("purge");
    assert!(report.finished);
    let (status, body) = server
        .call(
            "POST",
            "/api/workspaces/acme/packages",
            Auth::Bearer(&alice),
            Some(json!({"type": "maven", "name": "com.acme:lib", "repository": "web"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let put = server
        .request("PUT", jar, Auth::Basic("alice", &alice), Some("new".into()))
        .await;
    assert_eq!(put.status(), StatusCode::CREATED);
    assert_eq!(
        head(bob.clone(), "bob").await,
        StatusCode::NOT_FOUND,
        "bob has no role on web"
    );
    assert_eq!(head(alice.clone(), "alice").await, StatusCode::OK);
}
