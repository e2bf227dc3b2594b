//! The web console (`/console`) on the API's port, on SQLite and PostgreSQL: security headers,
//! sign-in, CSRF and Origin checks, escaping, friendly 4xx pages, key administration; and once,
//! in a real headless Chromium driven over WebDriver, a user's whole walk through it with
//! screenshots and an XSS probe.

#![allow(clippy::unwrap_used)] // Tests unwrap: a panic with the value is the clearest failure.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use membrain_auth::ApiKey;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{StatusCode, redirect};
use serde_json::{Value, json};
use support::TestStack;

on_both_backends!(
    pages_carry_the_security_headers_and_need_a_session,
    sign_in_checks_the_key_and_the_origin,
    every_value_is_escaped_and_bad_input_gets_a_friendly_page,
    only_the_operator_administers_keys_and_forms_need_their_token,
);

/// The operator key every console test's API is started with.
const OPERATOR_KEY: &str = "mb_operator_console_test_0123456789";

async fn stack(backend: membrain_store::Backend) -> TestStack {
    TestStack::spawn_with(backend, |settings| {
        settings.operator_key = ApiKey::new(OPERATOR_KEY);
    })
    .await
}

/// A browser's view of the console without a browser: one cookie jar of one session, and
/// redirects shown, not followed.
struct ConsoleClient {
    base: String,
    http: reqwest::Client,
    cookie: Option<String>,
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    /// The value of the first hidden `csrf_token` field.
    fn csrf_token(&self) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let start = self.body.find(marker).expect("a CSRF field") + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }

    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

impl ConsoleClient {
    fn new(stack: &TestStack) -> Self {
        Self {
            base: stack.api_url.clone(),
            http: reqwest::Client::builder()
                .redirect(redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    async fn get(&self, path: &str) -> Page {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        read(request.send().await.unwrap()).await
    }

    /// A form POST from this console's own page (its Origin), plus `headers`.
    async fn post(&mut self, path: &str, form: &[(&str, &str)], headers: &[(&str, &str)]) -> Page {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap())
            .header("origin", self.base.clone());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        let page = read(request.send().await.unwrap()).await;
        if let Some(set) = page.headers.get(SET_COOKIE).and_then(|v| v.to_str().ok()) {
            let pair = set.split(';').next().unwrap_or_default().to_owned();
            self.cookie = (!pair.ends_with('=')).then_some(pair);
        }
        page
    }

    async fn sign_in(&mut self, key: &str) -> Page {
        self.post("/console/login", &[("key", key)], &[]).await
    }
}

async fn read(response: reqwest::Response) -> Page {
    Page {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

fn assert_security_headers(page: &Page) {
    let header = |name: &str| {
        page.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(
        header("content-security-policy"),
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("referrer-policy"), "no-referrer");
    assert_eq!(header("cache-control"), "no-store");
    assert_eq!(header("x-frame-options"), "DENY");
}

async fn pages_carry_the_security_headers_and_need_a_session(backend: membrain_store::Backend) {
    let stack = stack(backend).await;
    let client = ConsoleClient::new(&stack);
    let login = client.get("/console/login").await;
    assert_eq!(login.status, StatusCode::OK);
    assert_security_headers(&login);
    assert!(
        login
            .body
            .contains("<form method=\"post\" action=\"/console/login\"")
    );
    assert!(!login.body.contains("<script"), "no script at all");

    let css = client.get("/console/static/console.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.headers["content-type"], "text/css; charset=utf-8");
    assert_security_headers(&css);

    // Without a session, every page sends the browser to sign in; error pages carry the
    // headers too.
    for path in [
        "/console",
        "/console/memories",
        "/console/search?q=tea",
        "/console/keys",
        "/console/network",
    ] {
        let page = client.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(page.location(), "/console/login", "{path}");
        assert_security_headers(&page);
    }
    let missing = client.get("/console/no-such-page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing
            .body
            .contains("There is no console page at this address.")
    );
    assert_security_headers(&missing);
    // The API is untouched by the console: still JSON, still its own 404.
    let api = reqwest::get(format!("{}/api/v1/nope", stack.api_url))
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::NOT_FOUND);
    assert!(api.text().await.unwrap().contains("\"error\""));
}

async fn sign_in_checks_the_key_and_the_origin(backend: membrain_store::Backend) {
    let stack = stack(backend).await;
    let key = stack.key("acme").await;
    let mut client = ConsoleClient::new(&stack);

    let wrong = client.sign_in("mb_not_a_real_key_0000000000").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.body.contains("not valid or has been revoked"),
        "{}",
        wrong.body
    );
    assert!(client.cookie.is_none());
    let empty = client.sign_in("").await;
    assert_eq!(empty.status, StatusCode::UNAUTHORIZED);

    // A form from another site is refused before the key is even looked at.
    let foreign = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/console/login", stack.api_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([("key", key.as_str())]).unwrap())
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert!(foreign.headers().get(SET_COOKIE).is_none());
    let no_origin = reqwest::Client::new()
        .post(format!("{}/console/login", stack.api_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([("key", key.as_str())]).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(no_origin.status(), StatusCode::FORBIDDEN);

    let signed_in = client.sign_in(&key).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_in.location(), "/console/memories");
    let cookie = signed_in.headers[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("membrain_console="), "{cookie}");
    assert!(
        cookie.ends_with("; HttpOnly; SameSite=Strict; Path=/console"),
        "no Secure over plain HTTP: {cookie}"
    );
    assert!(!cookie.contains(&key), "the key never leaves the server");
    let page = client.get("/console/memories").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Tenant <strong>acme</strong>"),
        "{}",
        page.body
    );
    assert!(!page.body.contains(&key), "the key is never in a page");

    // Behind a TLS-terminating proxy the cookie is Secure.
    let mut over_tls = ConsoleClient::new(&stack);
    let secure = over_tls
        .post(
            "/console/login",
            &[("key", key.as_str())],
            &[("x-forwarded-proto", "https")],
        )
        .await;
    assert!(
        secure.headers[SET_COOKIE]
            .to_str()
            .unwrap()
            .ends_with("; Secure")
    );

    // Signing out needs the page's token, then ends the session.
    let refused = client.post("/console/logout", &[], &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_security_headers(&refused);
    let token = page.csrf_token();
    let out = client
        .post("/console/logout", &[("csrf_token", &token)], &[])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(
        out.headers[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = ConsoleClient {
        cookie: Some(cookie.split(';').next().unwrap().to_owned()),
        ..ConsoleClient::new(&stack)
    };
    assert_eq!(
        after.get("/console/memories").await.status,
        StatusCode::SEE_OTHER
    );
}

/// Memories whose every field a script would love to be in.
const SCRIPT_CONTENT: &str = "<script>document.title='pwned'</script> remembers the tea";
const IMG_CONTENT: &str = "<img src=x onerror=\"document.title='pwned'\"> also drinks tea";
const HTML_TAG: &str = "<b>bold</b>";
const HTML_DESCRIPTION: &str = "<iframe src=\"https://evil.example\"></iframe> both about tea";

/// Stores the two probe memories, linked with an HTML description; returns their ids.
async fn store_probes(stack: &TestStack, key: &str) -> (String, String) {
    let api = stack.rest(key);
    let script = api.add_id(SCRIPT_CONTENT, &[HTML_TAG, "probe"]).await;
    let img = api.add_id(IMG_CONTENT, &["probe"]).await;
    let (status, linked) = api
        .post(
            "/memories/link",
            json!({"memory_id_1": script, "memory_id_2": img, "description": HTML_DESCRIPTION}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{linked}");
    (script, img)
}

fn assert_escaped(page: &Page, what: &str) {
    assert_eq!(page.status, StatusCode::OK, "{what}: {}", page.body);
    for raw in ["<script>", "<img src=x", "<b>bold", "<iframe"] {
        assert!(!page.body.contains(raw), "{what} holds {raw} unescaped");
    }
}

async fn every_value_is_escaped_and_bad_input_gets_a_friendly_page(
    backend: membrain_store::Backend,
) {
    let stack = stack(backend).await;
    let key = stack.key("acme").await;
    let (script, _) = store_probes(&stack, &key).await;
    let mut client = ConsoleClient::new(&stack);
    client.sign_in(&key).await;

    let list = client.get("/console/memories").await;
    assert_escaped(&list, "the list");
    assert!(
        list.body
            .contains("&lt;script&gt;document.title='pwned'&lt;/script&gt;")
    );
    let tagged = client.get("/console/memories?tag=probe").await;
    assert_escaped(&tagged, "the tag filter");
    assert_eq!(tagged.body.matches("class=\"memory-link\"").count(), 2);
    let search = client.get("/console/search?q=tea").await;
    assert_escaped(&search, "search");
    assert!(search.body.contains("Why it matched"), "{}", search.body);
    assert!(search.body.contains("<code>tea</code>"), "{}", search.body);
    let memory = client.get(&format!("/console/memories/{script}")).await;
    assert_escaped(&memory, "a memory");
    assert!(
        memory.body.contains("&lt;iframe"),
        "the description shows literally"
    );
    assert!(
        memory.body.contains("&lt;b&gt;bold&lt;/b&gt;"),
        "the tag shows literally"
    );
    let graph = client.get(&format!("/console/graph/{script}")).await;
    assert_escaped(&graph, "the graph");
    assert!(graph.body.contains("<svg class=\"graph\""));
    assert_eq!(graph.body.matches("<a class=\"node\"").count(), 2);
    let network = client.get("/console/network").await;
    assert_eq!(network.status, StatusCode::OK);
    assert!(network.body.contains("<svg class=\"network\""));

    // Bad input: a friendly page with the right 4xx, never a 500.
    let unknown = uuid::Uuid::now_v7();
    for (path, status) in [
        (
            "/console/memories/not-an-id".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/console/memories/{unknown}"),
            StatusCode::NOT_FOUND,
        ),
        (format!("/console/graph/{unknown}"), StatusCode::NOT_FOUND),
        (
            format!("/console/graph/{script}?hops=9"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/console/memories?cursor=garbage".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/console/series/no_db/no_table".to_owned(),
            StatusCode::NOT_FOUND,
        ),
        ("/console/keys".to_owned(), StatusCode::FORBIDDEN),
    ] {
        let page = client.get(&path).await;
        assert_eq!(page.status, status, "{path}: {}", page.body);
        assert!(page.body.contains("Back to the console"), "{path}");
        assert_security_headers(&page);
    }
    let put = reqwest::Client::new()
        .put(format!("{}/console/memories", stack.api_url))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::METHOD_NOT_ALLOWED);
}

async fn only_the_operator_administers_keys_and_forms_need_their_token(
    backend: membrain_store::Backend,
) {
    let stack = stack(backend).await;
    let mut operator = ConsoleClient::new(&stack);
    let signed_in = operator.sign_in(OPERATOR_KEY).await;
    assert_eq!(signed_in.location(), "/console/keys");
    let keys = operator.get("/console/keys").await;
    assert_eq!(keys.status, StatusCode::OK, "{}", keys.body);
    assert!(keys.body.contains("<strong>Operator</strong>"));
    let token = keys.csrf_token();
    // The operator has no tenant: memory pages say so.
    assert_eq!(
        operator.get("/console/memories").await.status,
        StatusCode::FORBIDDEN
    );

    let forged = operator
        .post(
            "/console/keys",
            &[("tenant", "acme"), ("csrf_token", "0000")],
            &[],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let invalid = operator
        .post(
            "/console/keys",
            &[("tenant", "no spaces"), ("csrf_token", &token)],
            &[],
        )
        .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST, "{}", invalid.body);
    let created = operator
        .post(
            "/console/keys",
            &[
                ("tenant", "acme"),
                ("label", "<i>laptop</i>"),
                ("csrf_token", &token),
            ],
            &[],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert!(created.body.contains("&lt;i&gt;laptop&lt;/i&gt;"));
    let marker = "id=\"new-key\">";
    let start = created.body.find(marker).unwrap() + marker.len();
    let new_key = created.body[start..start + created.body[start..].find('<').unwrap()].to_owned();
    let (status, who) = stack.rest(&new_key).get("/auth/whoami").await;
    assert_eq!(
        (status, who["tenant"].as_str()),
        (StatusCode::OK, Some("acme"))
    );

    let (_, listed) = reqwest::Client::new()
        .get(format!("{}/api/v1/admin/keys", stack.api_url))
        .header("x-api-key", OPERATOR_KEY)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .map(|v| ((), v))
        .unwrap();
    let key_id = listed["keys"][0]["id"].as_str().unwrap().to_owned();
    let forged = operator
        .post(&format!("/console/keys/{key_id}/revoke"), &[], &[])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let revoked = operator
        .post(
            &format!("/console/keys/{key_id}/revoke"),
            &[("csrf_token", &token)],
            &[],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.body);
    let (status, _) = stack.rest(&new_key).get("/auth/whoami").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let unknown = operator
        .post(
            "/console/keys/key_nope/revoke",
            &[("csrf_token", &token)],
            &[],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // A tenant's session may not administer keys, even with its own valid token.
    let mut tenant = ConsoleClient::new(&stack);
    tenant.sign_in(&stack.key("acme").await).await;
    let own = tenant.get("/console/memories").await;
    let refused = tenant
        .post(
            "/console/keys",
            &[("tenant", "acme"), ("csrf_token", &own.csrf_token())],
            &[],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

/// The console's settings are checked before anything starts, and say how to fix them.
#[tokio::test]
async fn bad_console_settings_stop_the_start_with_a_reason() {
    for (args, expected) in [
        (
            &["api", "--operator-key", "short"][..],
            "MEMBRAIN_OPERATOR_KEY is too short",
        ),
        (
            &["api", "--console-network-profile", "mesh"][..],
            "is not a profile: use alb or gateway",
        ),
    ] {
        let (ok, _, stderr) = support::membrain_output(args, &[]).await;
        assert!(!ok, "{args:?}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let (ok, help, _) = support::membrain_output(&["serve", "--help"], &[]).await;
    assert!(ok);
    for flag in [
        "--operator-key",
        "--no-console",
        "--console-network-profile",
    ] {
        assert!(help.contains(flag), "serve --help lacks {flag}");
    }
}

// ---- the real browser ------------------------------------------------------------------------

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// ChromeDriver on a free port, stopped with the test.
struct Driver {
    _process: tokio::process::Child,
    url: String,
}

async fn start_driver() -> Driver {
    for program in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            std::path::Path::new(program).exists(),
            "{program} is missing: the console's browser test needs Debian's Chromium and \
             ChromeDriver. Run scripts/test (it installs them) or \
             `apt-get install -y chromium chromium-driver`."
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let process = tokio::process::Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if let Ok(response) = reqwest::get(format!("{url}/status")).await
            && response.status().is_success()
        {
            return Driver {
                _process: process,
                url,
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("chromedriver did not start on port {port}");
}

async fn browser(driver: &Driver) -> Client {
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000"],
        },
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!("an object")
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).unwrap();
}

/// The probe never ran: the title is the page's own, and the probes' text shows literally.
async fn assert_no_script_ran(browser: &Client, page: &str) {
    let title = browser.title().await.unwrap();
    assert!(!title.contains("pwned"), "a probe ran on {page}: {title}");
    assert!(title.ends_with("· Membrain"), "{page}: {title}");
}

async fn body_text(browser: &Client) -> String {
    browser
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_walks_the_console() {
    let driver = start_driver().await;
    let stack = stack(membrain_store::Backend::Sqlite).await;
    let key = stack.key("acme").await;
    let api = stack.rest(&key);
    let (script, img) = store_probes(&stack, &key).await;
    let tea = api
        .add_id("The user drinks green tea every morning", &["drinks"])
        .await;
    let (status, _) = api
        .post(
            "/memories/link",
            json!({"memory_id_1": tea, "memory_id_2": img, "description": "both about tea"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // A bus's speed over the last hour, one record a minute.
    let now = chrono::Utc::now();
    let records: Vec<Value> = (0..60)
        .map(|minute| {
            let time = now - chrono::Duration::minutes(60 - minute);
            json!({
                "time": time.to_rfc3339(),
                "dimensions": {"bus_id": "B1"},
                "measures": {"speed": 20.0 + (minute as f64 / 6.0).sin() * 8.0},
            })
        })
        .collect();
    let (status, written) = api
        .post(
            "/ts/tables/transit/bus_speed/records",
            json!({ "records": records }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{written}");
    // A second tenant's key: the operator revokes the first row's, acme's, and beta's stays.
    stack.key("beta").await;

    let browser = browser(&driver).await;
    let base = stack.api_url.clone();
    let result = async {
        // Sign in.
        browser.goto(&format!("{base}/console")).await?;
        assert!(
            browser
                .current_url()
                .await?
                .path()
                .ends_with("/console/login")
        );
        screenshot(&browser, "01-sign-in").await;
        browser
            .find(Locator::Id("key"))
            .await?
            .send_keys(&key)
            .await?;
        browser.find(Locator::Id("sign-in")).await?.click().await?;
        browser
            .wait()
            .for_element(Locator::Css("table.memories"))
            .await?;
        assert_no_script_ran(&browser, "the list").await;
        let text = body_text(&browser).await;
        assert!(
            text.contains("<script>document.title='pwned'</script>"),
            "{text}"
        );
        assert!(text.contains("<img src=x onerror="), "{text}");
        screenshot(&browser, "02-memories").await;

        // Search, with why each result matched.
        browser.goto(&format!("{base}/console/search")).await?;
        browser
            .find(Locator::Id("q"))
            .await?
            .send_keys("green tea")
            .await?;
        browser.find(Locator::Id("search")).await?.click().await?;
        browser
            .wait()
            .for_element(Locator::Css("li.result"))
            .await?;
        assert_no_script_ran(&browser, "search").await;
        let text = body_text(&browser).await;
        assert!(text.contains("Why it matched"), "{text}");
        assert!(
            text.contains("The user drinks green tea every morning"),
            "{text}"
        );
        screenshot(&browser, "03-search").await;

        // Open a memory from the results.
        browser
            .find(Locator::Css("li.result a.memory-link"))
            .await?
            .click()
            .await?;
        browser
            .wait()
            .for_element(Locator::Id("memory-content"))
            .await?;
        assert_no_script_ran(&browser, "a memory").await;
        screenshot(&browser, "04-memory").await;

        // The probe memory's page shows its HTML literally.
        browser
            .goto(&format!("{base}/console/memories/{script}"))
            .await?;
        assert_no_script_ran(&browser, "the probe memory").await;
        let content = browser
            .find(Locator::Id("memory-content"))
            .await?
            .text()
            .await?;
        assert_eq!(content, SCRIPT_CONTENT);
        let text = body_text(&browser).await;
        assert!(text.contains(HTML_DESCRIPTION), "{text}");
        assert!(text.contains(HTML_TAG), "{text}");

        // Walk the graph: from the probe to its neighbour, by clicking the node.
        browser
            .find(Locator::Id("open-graph"))
            .await?
            .click()
            .await?;
        browser
            .wait()
            .for_element(Locator::Css("svg#graph"))
            .await?;
        assert_no_script_ran(&browser, "the graph").await;
        screenshot(&browser, "05-graph").await;
        let neighbour = browser
            .find(Locator::Css(&format!(
                "svg#graph a.node[data-memory-id='{img}']"
            )))
            .await?;
        neighbour.click().await?;
        browser
            .wait()
            .for_url(format!("{base}/console/graph/{img}").parse().unwrap())
            .await?;
        let centre = browser
            .find(Locator::Id("graph-centre"))
            .await?
            .text()
            .await?;
        assert_eq!(centre, IMG_CONTENT);
        assert_no_script_ran(&browser, "the walked graph").await;
        let nodes = browser.find_all(Locator::Css("svg#graph a.node")).await?;
        assert_eq!(
            nodes.len(),
            3,
            "the neighbour's neighbours: both probes and the tea"
        );
        screenshot(&browser, "06-graph-walked").await;

        // A chart of a range, with bins and an aggregate chosen in the form.
        browser.goto(&format!("{base}/console/series")).await?;
        browser
            .find(Locator::Css("a.table-link"))
            .await?
            .click()
            .await?;
        browser
            .wait()
            .for_element(Locator::Id("range-form"))
            .await?;
        let bin = browser.find(Locator::Css("input[name=bin]")).await?;
        bin.clear().await?;
        bin.send_keys("5m").await?;
        browser
            .find(Locator::Css("select[name=aggregate] option[value=max]"))
            .await?
            .click()
            .await?;
        browser.find(Locator::Id("draw")).await?.click().await?;
        browser
            .wait()
            .for_element(Locator::Css("figure#chart svg"))
            .await?;
        let url = browser.current_url().await?;
        assert!(url.query().unwrap_or_default().contains("bin=5m"), "{url}");
        assert!(
            url.query().unwrap_or_default().contains("aggregate=max"),
            "{url}"
        );
        let lines = browser
            .find_all(Locator::Css(
                "figure#chart svg polyline, figure#chart svg path",
            ))
            .await?;
        assert!(!lines.is_empty(), "the chart has a line");
        screenshot(&browser, "07-chart").await;

        // The network plan.
        browser.goto(&format!("{base}/console/network")).await?;
        browser
            .wait()
            .for_element(Locator::Css("svg#network"))
            .await?;
        screenshot(&browser, "08-network").await;
        browser
            .find(Locator::Id("show-refused"))
            .await?
            .click()
            .await?;
        browser
            .wait()
            .for_element(Locator::Css("svg#network g.flow.forbidden"))
            .await?;
        screenshot(&browser, "08-network-refused").await;

        // Sign out; then the operator revokes the tenant's key.
        browser.find(Locator::Id("sign-out")).await?.click().await?;
        browser.wait().for_element(Locator::Id("key")).await?;
        browser
            .find(Locator::Id("key"))
            .await?
            .send_keys(OPERATOR_KEY)
            .await?;
        browser.find(Locator::Id("sign-in")).await?.click().await?;
        browser
            .wait()
            .for_element(Locator::Css("table.keys"))
            .await?;
        screenshot(&browser, "09-keys").await;
        let revoke = browser
            .find(Locator::Css("table.keys button.danger"))
            .await?;
        revoke.click().await?;
        browser
            .wait()
            .for_element(Locator::Css("table.keys .revoked"))
            .await?;
        screenshot(&browser, "10-key-revoked").await;
        browser.find(Locator::Id("sign-out")).await?.click().await?;
        browser.wait().for_element(Locator::Id("key")).await?;
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    if result.is_err() {
        // What the browser showed when the walk stopped, for the failure's reader.
        let _ =
            tokio::time::timeout(Duration::from_secs(10), screenshot(&browser, "failure")).await;
        let url = browser
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        let source = browser.source().await.unwrap_or_default();
        eprintln!("the browser was at {url}:\n{source}");
    }
    let _ = browser.close().await;
    result.expect("the walk through the console");
    // The first key (of the revoke button's row) no longer works.
    let (status, _) = stack.rest(&key).get("/auth/whoami").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the revoked key is refused"
    );
}
