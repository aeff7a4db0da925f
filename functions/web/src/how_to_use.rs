//! How to use a package, ready to copy: each client's commands and configuration for this
//! exact package on this host. The token is never written into them: the snippets name an
//! environment variable, `STOWAGE_TOKEN`, that holds one of the user's tokens.

use stowage_domain::PackageType;

/// One block to copy, and what it is for.
pub struct Snippet {
    pub title: &'static str,
    pub text: String,
}

/// What the snippets are about.
pub struct Subject<'a> {
    /// The site's base URL, without a trailing `/` (`https://registry.example.com`).
    pub base: &'a str,
    pub workspace: &'a str,
    pub kind: PackageType,
    pub name: &'a str,
    /// The version or tag to show (the newest), when there is one.
    pub version: Option<&'a str>,
    pub username: &'a str,
}

pub fn snippets(subject: &Subject<'_>) -> Vec<Snippet> {
    match subject.kind {
        PackageType::Container => container(subject),
        PackageType::Npm => npm(subject),
        PackageType::Maven => maven(subject),
    }
}

fn host_of(base: &str) -> &str {
    base.split_once("://").map_or(base, |(_, host)| host)
}

fn container(subject: &Subject<'_>) -> Vec<Snippet> {
    let host = host_of(subject.base);
    let tag = subject.version.unwrap_or("latest");
    let image = format!("{host}/{}/{}:{tag}", subject.workspace, subject.name);
    let plain_http = subject.base.starts_with("http://");
    let tls = if plain_http {
        " --tls-verify=false"
    } else {
        ""
    };
    let mut docker = format!(
        "echo \"$STOWAGE_TOKEN\" | docker login {host} -u {} --password-stdin\ndocker pull {image}",
        subject.username
    );
    if plain_http {
        docker.push_str(&format!(
            "\n# plain HTTP: list {host} under \"insecure-registries\" in /etc/docker/daemon.json"
        ));
    }
    vec![
        Snippet {
            title: "Docker",
            text: docker,
        },
        Snippet {
            title: "Podman",
            text: format!(
                "podman login{tls} {host} -u {} -p \"$STOWAGE_TOKEN\"\npodman pull{tls} {image}",
                subject.username
            ),
        },
    ]
}

fn npm(subject: &Subject<'_>) -> Vec<Snippet> {
    let registry = format!("{}/npm/{}/", subject.base, subject.workspace);
    let without_scheme = registry
        .split_once("://")
        .map_or(registry.as_str(), |(_, rest)| rest);
    let registry_line = match subject.name.split_once('/') {
        Some((scope, _)) if scope.starts_with('@') => format!("{scope}:registry={registry}"),
        _ => format!("registry={registry}"),
    };
    let spec = match subject.version {
        Some(version) => format!("{}@{version}", subject.name),
        None => subject.name.to_owned(),
    };
    vec![
        Snippet {
            title: ".npmrc",
            text: format!("{registry_line}\n//{without_scheme}:_authToken=${{STOWAGE_TOKEN}}"),
        },
        Snippet {
            title: "npm",
            text: format!("npm install {spec}"),
        },
    ]
}

fn maven(subject: &Subject<'_>) -> Vec<Snippet> {
    let (group, artifact) = subject.name.split_once(':').unwrap_or(("", subject.name));
    let version = subject.version.unwrap_or("VERSION");
    let url = format!("{}/maven/{}/", subject.base, subject.workspace);
    let insecure = if url.starts_with("http://") {
        "\n        allowInsecureProtocol = true"
    } else {
        ""
    };
    vec![
        Snippet {
            title: "pom.xml: the dependency",
            text: format!(
                "<dependency>\n  <groupId>{group}</groupId>\n  <artifactId>{artifact}</artifactId>\n  <version>{version}</version>\n</dependency>"
            ),
        },
        Snippet {
            title: "pom.xml: the repository",
            text: format!(
                "<repositories>\n  <repository>\n    <id>stowage</id>\n    <url>{url}</url>\n  </repository>\n</repositories>"
            ),
        },
        Snippet {
            title: "~/.m2/settings.xml: the credentials",
            text: format!(
                "<servers>\n  <server>\n    <id>stowage</id>\n    <username>{}</username>\n    <password>${{env.STOWAGE_TOKEN}}</password>\n  </server>\n</servers>",
                subject.username
            ),
        },
        Snippet {
            title: "Gradle (build.gradle)",
            text: format!(
                "repositories {{\n    maven {{\n        url '{url}'{insecure}\n        credentials {{\n            username = '{}'\n            password = System.getenv('STOWAGE_TOKEN')\n        }}\n    }}\n}}\ndependencies {{ implementation '{group}:{artifact}:{version}' }}",
                subject.username
            ),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(kind: PackageType, name: &'static str) -> Subject<'static> {
        Subject {
            base: "https://registry.example.com",
            workspace: "acme",
            kind,
            name,
            version: Some("1.2.0"),
            username: "alice",
        }
    }

    #[test]
    fn an_image_is_pulled_by_host_workspace_name_and_tag() {
        let snippets = snippets(&subject(PackageType::Container, "api/server"));
        assert!(
            snippets[0]
                .text
                .contains("docker pull registry.example.com/acme/api/server:1.2.0")
        );
        assert!(!snippets[1].text.contains("tls-verify"));
    }

    #[test]
    fn a_scoped_npm_package_sets_its_scopes_registry() {
        let snippets = snippets(&subject(PackageType::Npm, "@acme/left-pad"));
        assert_eq!(
            snippets[0].text,
            "@acme:registry=https://registry.example.com/npm/acme/\n\
             //registry.example.com/npm/acme/:_authToken=${STOWAGE_TOKEN}"
        );
        assert_eq!(snippets[1].text, "npm install @acme/left-pad@1.2.0");
    }

    #[test]
    fn a_maven_artifact_names_its_group_artifact_and_version() {
        let snippets = snippets(&subject(PackageType::Maven, "com.acme:lib"));
        assert!(snippets[0].text.contains("<groupId>com.acme</groupId>"));
        assert!(snippets[0].text.contains("<artifactId>lib</artifactId>"));
        assert!(
            snippets[3]
                .text
                .contains("implementation 'com.acme:lib:1.2.0'")
        );
        assert!(!snippets[3].text.contains("allowInsecureProtocol"));
    }
}
