//! The web interface over plain HTTP, for tests that look at its headers, cookies and storage
//! calls rather than at pages in a browser: signing in as a browser would (the form, its CSRF
//! secret and cookie), then requests with the session's cookie.

use http::StatusCode;
use http::header::{COOKIE, LOCATION, SET_COOKIE};

pub struct WebPage {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl WebPage {
    pub fn location(&self) -> Option<&str> {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok())
    }

    /// Every `Set-Cookie` value.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }

    /// The value of the first hidden `csrf` field.
    pub fn csrf(&self) -> Option<String> {
        let start = self.body.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
        let end = self.body[start..].find('"')?;
        Some(self.body[start..start + end].to_owned())
    }
}

/// `name=value` of a `Set-Cookie` for `name`.
pub fn cookie_pair(set_cookies: &[String], name: &str) -> Option<String> {
    set_cookies
        .iter()
        .find(|cookie| cookie.starts_with(&format!("{name}=")))
        .map(|cookie| cookie.split(';').next().unwrap_or_default().to_owned())
}

/// An HTTP client of the web interface that follows no redirects.
pub struct WebClient {
    pub base: String,
    client: reqwest::Client,
}

impl WebClient {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
        }
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> WebPage {
        self.send(self.client.get(format!("{}{path}", self.base)), cookie)
            .await
    }

    pub async fn post(&self, path: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> WebPage {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(request, cookie).await
    }

    async fn send(&self, mut request: reqwest::RequestBuilder, cookie: Option<&str>) -> WebPage {
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        let response = request.send().await.expect("request");
        WebPage {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.expect("body"),
        }
    }

    /// Signs in with the form, as a browser does: the session's cookie (`name=value`) and the
    /// CSRF secret its pages carry.
    pub async fn sign_in(&self, name: &str, token: &str) -> WebSession {
        let form = self.get("/sign-in", None).await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let form_cookie =
            cookie_pair(&form.set_cookies(), "stowage_sign_in").expect("the form's cookie");
        let csrf = form.csrf().expect("the form's secret");
        let signed_in = self
            .post(
                "/sign-in",
                Some(&form_cookie),
                &[
                    ("csrf", &csrf),
                    ("name", name),
                    ("token", token),
                    ("next", "/"),
                ],
            )
            .await;
        assert_eq!(
            signed_in.status,
            StatusCode::SEE_OTHER,
            "{}",
            signed_in.body
        );
        let cookie = cookie_pair(&signed_in.set_cookies(), "stowage_session").expect("session");
        let home = self.get("/", Some(&cookie)).await;
        assert_eq!(home.status, StatusCode::OK, "{}", home.body);
        WebSession {
            csrf: home.csrf().expect("the page's secret"),
            cookie,
        }
    }
}

pub struct WebSession {
    /// `stowage_session=<value>`, for a `Cookie` header.
    pub cookie: String,
    pub csrf: String,
}
