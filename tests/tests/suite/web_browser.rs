//! The web interface in a real browser (headless Chromium through chromedriver), on the
//! embedded pair (the pages are over the service, whose storage the other suites cover on
//! both pairs): signing in, tokens, packages of each type published by their real clients
//! and shown with how to use them, deletions and restores, roles, a reader and an outsider.
//! Every page is checked with axe-core and saved under `tests/.work/ui/`.

use http::StatusCode;
use serde_json::json;
use stowage_tests::browser::Browser;
use stowage_tests::clients::{available, run};
use stowage_tests::oci::{OCI_MANIFEST, image, write_layout};
use stowage_tests::{ADMIN_TOKEN, Auth, Backend, Stores, TestServer};

use crate::maven_clients::{library, mvn, settings};
use crate::npm_clients::{NpmUser, package_dir, run_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn people_manage_packages_tokens_and_roles_in_a_browser() {
    if !available(&["skopeo", "npm", "mvn", "java"]) {
        return;
    }
    let server = TestServer::start(Stores::new(Backend::Embedded).await.expect("stores")).await;
    let alice = server
        .user_with_token("alice", &["read:package", "write:package"])
        .await;
    let bob = server.user_with_token("bob", &["read:package"]).await;
    let carol = server.user_with_token("carol", &["read:package"]).await;
    workspace_and_repository(&server, &alice).await;
    let Some(browser) = Browser::start(&server.url).await else {
        return;
    };

    a_new_user_starts_without_curl(&browser).await;
    sign_in_and_out(&browser, &alice).await;
    sign_in(&browser, "alice@example.com", &alice).await;
    tokens_are_shown_once_and_revoked(&browser, &server).await;
    create_packages(&browser).await;
    publish_with_real_clients(&server, &alice).await;
    packages_show_how_to_use_them(&browser, &server).await;
    delete_a_version(&browser, &server, &alice).await;
    delete_and_restore_a_package(&browser, &server, &alice).await;
    grant_roles_and_mint_a_pipeline_token(&browser, &server).await;
    usage_is_drawn(&browser).await;
    sign_out(&browser).await;

    a_reader_sees_no_delete_button(&browser, &bob).await;
    browser.goto("/").await;
    sign_out(&browser).await;
    an_outsider_sees_nothing(&browser, &carol).await;
    browser.close().await;

    dark_and_small_screens(&server, &alice).await;
}

/// The same pages in the dark scheme, and on a phone's width: still readable (axe checks the
/// contrast of each).
async fn dark_and_small_screens(server: &TestServer, alice: &str) {
    let Some(dark) = Browser::start_with(&server.url, &["--force-dark-mode"]).await else {
        return;
    };
    sign_in(&dark, "alice", alice).await;
    let scheme = dark
        .client
        .execute(
            "return window.matchMedia('(prefers-color-scheme: dark)').matches",
            Vec::new(),
        )
        .await
        .expect("media query");
    assert_eq!(scheme, json!(true), "the browser prefers the dark scheme");
    dark.goto(NPM).await;
    let background = dark
        .client
        .execute(
            "return getComputedStyle(document.body).backgroundColor",
            Vec::new(),
        )
        .await
        .expect("style");
    assert_eq!(background, json!("rgb(13, 17, 23)"), "the dark background");
    dark.check_page("package-npm-dark").await;
    dark.client
        .set_window_size(390, 844)
        .await
        .expect("a phone's size");
    dark.goto(MAVEN).await;
    let overflow = dark
        .client
        .execute(
            "return document.documentElement.scrollWidth > document.documentElement.clientWidth",
            Vec::new(),
        )
        .await
        .expect("width");
    let wide = dark
        .client
        .execute(
            "const w = document.documentElement.clientWidth;
             return [...document.querySelectorAll('body *')]
               .filter(e => e.getBoundingClientRect().right > w + 0.5)
               .map(e => e.tagName + '.' + e.className).slice(0, 5)",
            Vec::new(),
        )
        .await
        .expect("wide elements");
    assert_eq!(
        overflow,
        json!(false),
        "wider than a phone's screen: {wide}"
    );
    dark.check_page("package-maven-phone").await;
    dark.close().await;
}

async fn workspace_and_repository(server: &TestServer, token: &str) {
    let (status, body) = server
        .call(
            "POST",
            "/api/workspaces",
            Auth::Bearer(token),
            Some(json!({"slug": "acme", "plan": "standard"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = server
        .call(
            "POST",
            "/api/workspaces/acme/repositories",
            Auth::Bearer(token),
            Some(json!({"slug": "api"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn sign_in(browser: &Browser, name: &str, token: &str) {
    browser.goto("/sign-in").await;
    browser.fill("#name", name).await;
    browser.fill("#token", token).await;
    browser.click("form[action='/sign-in'] button").await;
    assert_eq!(browser.path().await, "/", "{}", browser.text().await);
}

async fn sign_out(browser: &Browser) {
    browser.click(".sign-out button").await;
    assert_eq!(browser.path().await, "/sign-in");
}

/// The site admin creates a user and mints their first token; the user signs in with it and
/// creates a workspace and a repository, all in pages.
async fn a_new_user_starts_without_curl(browser: &Browser) {
    sign_in(browser, "admin", ADMIN_TOKEN).await;
    browser.click("a[href='/users']").await;
    browser.fill("#username", "dave").await;
    browser.fill("#email", "dave@example.com").await;
    browser.click("form[action='/users'] button").await;
    assert_eq!(browser.path().await, "/users?created=dave");
    browser.click("form[action='/users/tokens'] button").await;
    let token = browser.text_of("#new-token").await;
    assert!(token.starts_with("stw_"), "{token}");
    browser.check_page("users").await;
    sign_out(browser).await;

    sign_in(browser, "dave@example.com", &token).await;
    assert!(
        browser
            .text()
            .await
            .contains("not a member of any workspace")
    );
    browser.check_page("home-new-user").await;
    browser.fill("#workspace-slug", "daves").await;
    browser.click("form[action='/workspaces'] button").await;
    assert_eq!(browser.path().await, "/workspaces/daves");
    browser.fill("#repository-slug", "tools").await;
    browser
        .click("form[action='/workspaces/daves/repositories'] button")
        .await;
    assert_eq!(browser.path().await, "/workspaces/daves");
    let page = browser.text().await;
    assert!(
        page.contains("tools") && page.contains("Create a package"),
        "{page}"
    );
    sign_out(browser).await;
}

async fn sign_in_and_out(browser: &Browser, token: &str) {
    browser.goto("/tokens").await;
    assert_eq!(browser.path().await, "/sign-in?next=/tokens");
    browser.check_page("sign-in").await;

    browser.fill("#name", "alice").await;
    browser
        .fill("#token", "stw_notTheRightTokenAtAll0000000000000000")
        .await;
    browser.click("form[action='/sign-in'] button").await;
    assert!(
        browser
            .text()
            .await
            .contains("That name and token do not match a valid token."),
        "{}",
        browser.text().await
    );
    browser.check_page("sign-in-refused").await;

    browser.goto("/sign-in?next=/tokens").await;
    browser.fill("#name", "alice").await;
    browser.fill("#token", token).await;
    browser.click("form[action='/sign-in'] button").await;
    assert_eq!(
        browser.path().await,
        "/tokens",
        "back where the visit began"
    );
    let session = browser.cookie("stowage_session").await.expect("a session");
    assert!(
        !session.contains(token),
        "the cookie must not carry the token readably"
    );
    sign_out(browser).await;
    browser.goto("/tokens").await;
    assert!(browser.path().await.starts_with("/sign-in"));
}

async fn tokens_are_shown_once_and_revoked(browser: &Browser, server: &TestServer) {
    browser.goto("/tokens").await;
    browser.fill("#token-name", "laptop").await;
    browser.fill("#expires", "30").await;
    browser
        .find("input[name=write]")
        .await
        .click()
        .await
        .expect("tick");
    browser.click("form[action='/tokens'] button").await;
    let secret = browser.text_of("#new-token").await;
    assert!(secret.starts_with("stw_"), "{secret}");
    browser.check_page("tokens-created").await;
    let (status, user) = server
        .call("GET", "/api/user", Auth::Bearer(&secret), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["username"], "alice");
    assert_eq!(
        user["scopes"],
        json!(["read:package", "write:package"]),
        "{user}"
    );

    // A form whose CSRF secret was taken out is refused, and changes nothing.
    browser.goto("/tokens").await;
    browser
        .client
        .execute(
            "document.querySelector(\"form[action='/tokens'] input[name=csrf]\").remove()",
            Vec::new(),
        )
        .await
        .expect("script");
    browser.fill("#token-name", "forged").await;
    browser.click("form[action='/tokens'] button").await;
    assert!(browser.text().await.contains("did not come from this site"));

    browser.goto("/tokens").await;
    let listed = browser.text().await;
    assert!(!listed.contains("forged"), "{listed}");
    assert!(listed.contains("laptop"), "{listed}");
    assert!(!listed.contains(&secret), "a token is shown once only");
    assert!(
        !browser
            .client
            .source()
            .await
            .expect("source")
            .contains(&secret)
    );
    browser
        .click("button[aria-label='Revoke token laptop']")
        .await;
    assert_eq!(browser.path().await, "/tokens");
    assert!(!browser.text().await.contains("laptop"));
    let (status, _) = server
        .call("GET", "/api/user", Auth::Bearer(&secret), None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a revoked token is refused"
    );
}

const CONTAINER: &str = "/workspaces/acme/packages/container/api/server";
const NPM: &str = "/workspaces/acme/packages/npm/@acme/left-pad";
const MAVEN: &str = "/workspaces/acme/packages/maven/com.acme:lib";

async fn create_packages(browser: &Browser) {
    for (kind, name, page) in [
        ("container", "api/server", CONTAINER),
        ("npm", "@acme/left-pad", NPM),
        ("maven", "com.acme:lib", MAVEN),
    ] {
        browser.goto("/workspaces/acme").await;
        browser.select("#kind", kind).await;
        browser.fill("#package-name", name).await;
        browser.select("#repository", "api").await;
        browser
            .click("form[action='/workspaces/acme/packages'] button")
            .await;
        assert_eq!(browser.path().await, page, "{}", browser.text().await);
        assert!(browser.text().await.contains("Nothing published yet."));
    }
    browser.goto("/workspaces/acme").await;
    browser.check_page("workspace").await;
    browser.goto("/workspaces/acme").await;
    browser.select("#kind", "npm").await;
    browser.fill("#package-name", "Not A Name").await;
    browser
        .click("form[action='/workspaces/acme/packages'] button")
        .await;
    let refused = browser.text().await;
    assert!(refused.contains("name:"), "{refused}");
    browser.check_page("error").await;
}

async fn publish_with_real_clients(server: &TestServer, alice: &str) {
    let host = server.url.trim_start_matches("http://");
    let work = tempfile::tempdir().expect("folder");

    let img = image(&[300_000, 200_000], "amd64", OCI_MANIFEST);
    let layout = work.path().join("layout");
    write_layout(&layout, &img, "1.0");
    run(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            &format!("alice:{alice}"),
            &format!("oci:{}:1.0", layout.display()),
            &format!("docker://{host}/acme/api/server:1.0"),
        ],
        &[],
    )
    .await
    .ok("skopeo copy");

    let user = NpmUser::new(server, alice);
    for version in ["1.0.0", "1.1.0"] {
        let dir = package_dir(work.path(), "@acme/left-pad", version);
        run_in(&user, &dir, &["publish"]).await.ok("npm publish");
    }

    let project = work.path().join("lib");
    let registry = format!("{}/maven/acme/", server.url);
    library(&project, &registry, "1.0.0");
    let settings = settings(work.path(), &work.path().join("m2"), alice);
    mvn(&project, &settings, "deploy").await.ok("mvn deploy");
}

async fn packages_show_how_to_use_them(browser: &Browser, server: &TestServer) {
    let host = server.url.trim_start_matches("http://");

    browser.goto(CONTAINER).await;
    let page = browser.text().await;
    for expected in [
        "1.0".to_owned(),
        format!("docker pull {host}/acme/api/server:1.0"),
        format!("podman pull --tls-verify=false {host}/acme/api/server:1.0"),
        "KiB".to_owned(),
        "alice".to_owned(),
    ] {
        assert!(page.contains(&expected), "{expected:?} in {page}");
    }
    browser.check_page("package-container").await;

    browser.goto(NPM).await;
    let page = browser.text().await;
    for expected in [
        "latest: 1.1.0".to_owned(),
        format!("@acme:registry=http://{host}/npm/acme/"),
        format!("//{host}/npm/acme/:_authToken=${{STOWAGE_TOKEN}}"),
        "npm install @acme/left-pad@1.1.0".to_owned(),
        "sha512-".to_owned(),
    ] {
        assert!(page.contains(&expected), "{expected:?} in {page}");
    }
    assert_eq!(browser.count("table.versions tbody tr").await, 2);
    assert_eq!(
        browser.count("pre[data-copy] button.copy").await,
        2,
        "each snippet has a copy button"
    );
    browser.check_page("package-npm").await;

    browser.goto(MAVEN).await;
    browser
        .find("details summary")
        .await
        .click()
        .await
        .expect("open the files");
    let page = browser.text().await;
    for expected in [
        "<groupId>com.acme</groupId>".to_owned(),
        "<artifactId>lib</artifactId>".to_owned(),
        "<version>1.0.0</version>".to_owned(),
        format!("<url>http://{host}/maven/acme/</url>"),
        "<username>alice</username>".to_owned(),
        "implementation 'com.acme:lib:1.0.0'".to_owned(),
        "lib-1.0.0.jar".to_owned(),
        "lib-1.0.0.pom".to_owned(),
    ] {
        assert!(page.contains(&expected), "{expected:?} in {page}");
    }
    browser.check_page("package-maven").await;
}

async fn delete_a_version(browser: &Browser, server: &TestServer, alice: &str) {
    browser.goto(NPM).await;
    browser.click("a[aria-label='Delete 1.0.0']").await;
    assert_eq!(
        browser.path().await,
        "/workspaces/acme/delete-version/npm/@acme/left-pad?version=1.0.0"
    );
    browser.check_page("confirm-delete-version").await;
    browser.click("form.actions button").await;
    assert_eq!(browser.path().await, NPM);
    assert_eq!(browser.count("table.versions tbody tr").await, 1);
    let (status, document) = server
        .call(
            "GET",
            "/npm/acme/@acme%2fleft-pad",
            Auth::Bearer(alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(document["versions"].get("1.0.0").is_none(), "{document}");
    assert!(document["versions"].get("1.1.0").is_some(), "{document}");
}

async fn delete_and_restore_a_package(browser: &Browser, server: &TestServer, alice: &str) {
    let tags = "/v2/acme/api/server/tags/list";
    browser.goto(CONTAINER).await;
    browser.click("a.button.danger").await;
    assert!(browser.text().await.contains("kept for 30 days"));
    browser.click("form.actions button").await;
    assert_eq!(browser.path().await, "/workspaces/acme");
    let page = browser.text().await;
    assert!(page.contains("container package api/server"), "{page}");
    browser.check_page("workspace-deleted").await;
    assert_eq!(
        server
            .call("GET", tags, Auth::Basic("alice", alice), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    browser
        .click("button[aria-label='Restore container package api/server']")
        .await;
    assert_eq!(browser.path().await, CONTAINER);
    let (status, body) = server
        .call("GET", tags, Auth::Basic("alice", alice), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tags"], json!(["1.0"]));
}

async fn grant_roles_and_mint_a_pipeline_token(browser: &Browser, server: &TestServer) {
    browser.goto("/workspaces/acme/repositories/api").await;
    browser.fill("#member", "bob").await;
    browser.select("#role", "write").await;
    browser.click("form[action$='/members'] button").await;
    browser.fill("#member", "bob").await;
    browser.select("#role", "read").await;
    browser.click("form[action$='/members'] button").await;
    let page = browser.text().await;
    assert!(
        page.contains("bob\tread") || page.contains("bob read"),
        "{page}"
    );
    assert!(!page.contains("bob\twrite") && !page.contains("bob write"));

    browser
        .click("form[action$='/pipeline-tokens'] button")
        .await;
    let page = browser.text().await;
    assert!(page.contains("Copy it now"), "{page}");
    let secret = browser.text_of(".shown-once pre code").await;
    browser.check_page("repository").await;
    let (status, _) = server
        .call(
            "GET",
            "/npm/acme/@acme%2fleft-pad",
            Auth::Basic("pipeline@acme/api", &secret),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the pipeline token reads its repository"
    );
}

async fn usage_is_drawn(browser: &Browser) {
    browser.goto("/workspaces/acme").await;
    browser.click("a[href='/workspaces/acme/usage']").await;
    assert_eq!(browser.count("svg.chart").await, 3);
    let page = browser.text().await;
    assert!(page.contains("of the standard plan's 10.0 GiB"), "{page}");
    browser.check_page("usage").await;
}

async fn a_reader_sees_no_delete_button(browser: &Browser, bob: &str) {
    sign_in(browser, "bob", bob).await;
    browser.goto("/workspaces/acme").await;
    let page = browser.text().await;
    assert!(page.contains("@acme/left-pad"), "{page}");
    assert!(!page.contains("Create a package"));
    browser.goto(NPM).await;
    assert!(browser.text().await.contains("1.1.0"));
    assert_eq!(browser.count("a.danger").await, 0, "no delete for a reader");
    browser
        .goto("/workspaces/acme/delete-package/npm/@acme/left-pad")
        .await;
    assert!(
        browser
            .text()
            .await
            .contains("There is nothing here that you can see.")
            || browser.text().await.contains("admin"),
        "{}",
        browser.text().await
    );
}

async fn an_outsider_sees_nothing(browser: &Browser, carol: &str) {
    sign_in(browser, "carol", carol).await;
    assert!(
        browser
            .text()
            .await
            .contains("not a member of any workspace")
    );
    for path in ["/workspaces/acme", NPM, "/workspaces/acme/repositories/api"] {
        browser.goto(path).await;
        let page = browser.text().await;
        assert!(
            page.contains("There is nothing here that you can see."),
            "{path}: {page}"
        );
        assert!(!page.contains("left-pad"), "{path}: {page}");
    }
}
