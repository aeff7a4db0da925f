//! Real Maven against stowage-local, on both storage pairs: `mvn deploy` of a release and of a
//! SNAPSHOT (twice), then a second project resolving each as a dependency from a fresh local
//! repository. Offline, with Debian's packaged plugins as the only other repository.

use std::path::{Path, PathBuf};

use stowage_tests::clients::{available, run};
use stowage_tests::{Stores, TestServer, on_both_backends};

on_both_backends!(
    mvn_deploys_and_resolves_releases_and_snapshots,
    gradle_resolves
);

/// The plugins' versions Debian ships (a pom must name them: there is no Maven Central).
const PLUGINS: &str = r#"
    <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-surefire-plugin</artifactId><version>2.22.3</version></plugin>
    <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-compiler-plugin</artifactId><version>3.10.1</version></plugin>
    <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-resources-plugin</artifactId><version>3.3.0</version></plugin>
    <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-jar-plugin</artifactId><version>3.3.0</version></plugin>
    <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-install-plugin</artifactId><version>3.1.0</version></plugin>
    <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-deploy-plugin</artifactId><version>3.0.0</version></plugin>"#;

/// A copy of Debian's Maven repository (its jars are symlinks, so it is copied with -L), made
/// by tests/run; or the packaged folder itself when the copy is missing.
pub(crate) fn debian_repository() -> PathBuf {
    let copy = Path::new(env!("CARGO_MANIFEST_DIR")).join(".work/maven-repo");
    if copy.exists() {
        copy
    } else {
        PathBuf::from("/usr/share/maven-repo")
    }
}

pub(crate) fn settings(dir: &Path, local: &Path, token: &str) -> PathBuf {
    let xml = format!(
        r#"<settings>
  <localRepository>{}</localRepository>
  <mirrors><mirror><id>debian</id><mirrorOf>*,!stowage</mirrorOf><url>file://{}</url></mirror></mirrors>
  <servers><server><id>stowage</id><username>alice</username><password>{token}</password></server></servers>
</settings>"#,
        local.display(),
        debian_repository().display()
    );
    let path = dir.join(format!(
        "settings-{}.xml",
        local.file_name().and_then(|n| n.to_str()).unwrap_or("m2")
    ));
    std::fs::write(&path, xml).expect("settings.xml");
    path
}

pub(crate) fn library(dir: &Path, registry: &str, version: &str) {
    let source = dir.join("src/main/java/com/acme");
    std::fs::create_dir_all(&source).expect("sources");
    std::fs::write(
        source.join("Lib.java"),
        format!("package com.acme; public class Lib {{ public static String hello() {{ return \"lib {version}\"; }} }}\n"),
    )
    .expect("Lib.java");
    let pom = format!(
        r#"<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.acme</groupId><artifactId>lib</artifactId><version>{version}</version>
  <properties><maven.compiler.release>17</maven.compiler.release><project.build.sourceEncoding>UTF-8</project.build.sourceEncoding></properties>
  <distributionManagement>
    <repository><id>stowage</id><url>{registry}</url></repository>
    <snapshotRepository><id>stowage</id><url>{registry}</url></snapshotRepository>
  </distributionManagement>
  <build><plugins>{PLUGINS}</plugins></build>
</project>"#
    );
    std::fs::write(dir.join("pom.xml"), pom).expect("pom.xml");
}

pub(crate) fn application(dir: &Path, registry: &str, dependency: &str) {
    let source = dir.join("src/main/java/com/acme/app");
    std::fs::create_dir_all(&source).expect("sources");
    std::fs::write(
        source.join("App.java"),
        "package com.acme.app; public class App { public static void main(String[] a) { System.out.println(com.acme.Lib.hello()); } }\n",
    )
    .expect("App.java");
    let pom = format!(
        r#"<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.acme</groupId><artifactId>app</artifactId><version>1.0</version>
  <properties><maven.compiler.release>17</maven.compiler.release><project.build.sourceEncoding>UTF-8</project.build.sourceEncoding></properties>
  <repositories><repository><id>stowage</id><url>{registry}</url><snapshots><enabled>true</enabled></snapshots></repository></repositories>
  <dependencies><dependency><groupId>com.acme</groupId><artifactId>lib</artifactId><version>{dependency}</version></dependency></dependencies>
  <build><plugins>{PLUGINS}</plugins></build>
</project>"#
    );
    std::fs::write(dir.join("pom.xml"), pom).expect("pom.xml");
}

pub(crate) async fn mvn(dir: &Path, settings: &Path, goal: &str) -> stowage_tests::clients::Run {
    let script = format!(
        "cd '{}' && mvn -B -e -s '{}' {goal}",
        dir.display(),
        settings.display()
    );
    run("sh", &["-c", &script], &[]).await
}

async fn mvn_deploys_and_resolves_releases_and_snapshots(stores: Stores) {
    if !available(&["mvn", "java"]) {
        return;
    }
    let server = TestServer::start(stores).await;
    let alice = server
        .user_with_token("alice", &["read:package", "write:package"])
        .await;
    server
        .package(&alice, "acme", "libs", "maven", "com.acme:lib")
        .await;
    let registry = format!("{}/maven/acme/", server.url);
    let work = tempfile::tempdir().expect("work");
    let deploying = settings(work.path(), &work.path().join("m2-deploy"), &alice);

    // A release, then the same release again (refused), then a SNAPSHOT twice.
    let lib = work.path().join("lib");
    library(&lib, &registry, "1.0");
    mvn(&lib, &deploying, "deploy")
        .await
        .ok("mvn deploy (release)");
    let again = mvn(&lib, &deploying, "deploy").await;
    // Maven prints the status line alone: the reason is in its reason phrase.
    assert!(
        !again.success
            && again.stdout.contains("409")
            && again
                .stdout
                .contains("release 1.0 of com.acme:lib is already deployed"),
        "{}",
        again.stdout
    );
    std::fs::remove_dir_all(lib.join("target")).expect("clean");
    library(&lib, &registry, "1.1-SNAPSHOT");
    mvn(&lib, &deploying, "deploy")
        .await
        .ok("mvn deploy (snapshot 1)");
    std::fs::remove_dir_all(lib.join("target")).expect("clean");
    mvn(&lib, &deploying, "deploy")
        .await
        .ok("mvn deploy (snapshot 2)");
    let metadata = server
        .client
        .get(format!(
            "{registry}com/acme/lib/1.1-SNAPSHOT/maven-metadata.xml"
        ))
        .basic_auth("alice", Some(&alice))
        .send()
        .await
        .expect("metadata")
        .text()
        .await
        .expect("text");
    assert!(
        metadata.contains("<buildNumber>2</buildNumber>"),
        "Maven numbered its second build from our metadata: {metadata}"
    );

    // A second project resolves each, from a fresh local repository (so it asks the server).
    for (dependency, expected) in [("1.0", "lib 1.0"), ("1.1-SNAPSHOT", "lib 1.1-SNAPSHOT")] {
        let app = work.path().join(format!("app-{dependency}"));
        application(&app, &registry, dependency);
        let local = work.path().join(format!("m2-fresh-{dependency}"));
        let resolving = settings(work.path(), &local, &alice);
        mvn(&app, &resolving, "package")
            .await
            .ok("mvn package (resolve)");
        let jar = std::fs::read_dir(local.join(format!("com/acme/lib/{dependency}")))
            .expect("resolved folder")
            .map(|entry| entry.expect("entry").path())
            .find(|path| path.extension().is_some_and(|e| e == "jar"))
            .expect("the resolved jar");
        let classpath = format!(
            "{}:{}",
            app.join("target/app-1.0.jar").display(),
            jar.display()
        );
        let ran = run("java", &["-cp", &classpath, "com.acme.app.App"], &[])
            .await
            .ok("java");
        assert_eq!(ran.stdout.trim(), expected);
    }
}

/// Debian's Gradle (4.4.1) resolves from the repository. It cannot publish over HTTP: Debian
/// packages it without the Maven resolver's transports ("Cannot access … using the available
/// connector factories: BasicRepositoryConnectorFactory"), with maven-publish and the old
/// maven plugin alike; so the library is deployed with mvn first.
async fn gradle_resolves(stores: Stores) {
    if !available(&["mvn", "java", "gradle"]) {
        return;
    }
    let server = TestServer::start(stores).await;
    let alice = server
        .user_with_token("alice", &["read:package", "write:package"])
        .await;
    server
        .package(&alice, "acme", "libs", "maven", "com.acme:lib")
        .await;
    let registry = format!("{}/maven/acme/", server.url);
    let work = tempfile::tempdir().expect("work");
    let lib = work.path().join("lib");
    library(&lib, &registry, "3.0");
    let deploying = settings(work.path(), &work.path().join("m2"), &alice);
    mvn(&lib, &deploying, "deploy").await.ok("mvn deploy");

    let app = work.path().join("gradle-app");
    let source = app.join("src/main/java/com/acme/g");
    std::fs::create_dir_all(&source).expect("sources");
    std::fs::write(source.join("G.java"), "package com.acme.g; public class G { public static String hi() { return com.acme.Lib.hello(); } }\n")
        .expect("G.java");
    let build = format!(
        "apply plugin: 'java'\nsourceCompatibility = 1.8\ntargetCompatibility = 1.8\n\
         repositories {{ maven {{ url '{registry}'; credentials {{ username 'alice'; password '{alice}' }} }} }}\n\
         dependencies {{ compile 'com.acme:lib:3.0' }}\n"
    );
    std::fs::write(app.join("build.gradle"), build).expect("build.gradle");
    let home = work.path().join("gradle-home");
    let script = format!(
        "cd '{}' && gradle --no-daemon -q -g '{}' build",
        app.display(),
        home.display()
    );
    run("sh", &["-c", &script], &[]).await.ok("gradle build");
    assert!(app.join("build/libs/gradle-app.jar").exists());
    let cached = std::fs::read_dir(home.join("caches/modules-2/files-2.1/com.acme/lib/3.0"))
        .expect("Gradle's cache of the dependency");
    assert!(
        cached.count() >= 2,
        "the pom and the jar came from the repository"
    );
}
