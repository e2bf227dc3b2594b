//! The console's routes over the API's own router, without a socket, on SQLite and PostgreSQL:
//! headers, sign-in, the Origin and CSRF checks, escaping, and a friendly 4xx page for every bad
//! input. (The real browser walks the console in `crates/cli/tests/console.rs`.)

#![allow(clippy::unwrap_used)] // Tests unwrap: a panic with the value is the clearest failure.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Request, StatusCode};
use membrain_api::{ApiSettings, AppState, DatabaseKeys, Semantic};
use membrain_auth::ApiKey;
use membrain_console::ConsoleSettings;
use membrain_embed::{EmbedError, Embedder};
use membrain_memory::text::content_hash;
use membrain_memory::{Limits, Memory, MemoryId, TenantId};
use membrain_store::testing::TestDatabase;
use membrain_store::{Backend, ImportItem, MemoryStore, SqlStore};
use tower::ServiceExt;

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::$name(super::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() { super::$name(super::Backend::Postgres).await })*
        }
    };
}

on_both_backends!(
    signing_in_and_out_is_checked_at_every_step,
    stored_html_is_shown_as_text_and_bad_input_is_a_4xx_page,
);

const OPERATOR: &str = "mb_operator_router_test_0123456789";
const HOST: &str = "console.test";
const PROBE: &str = "<script>document.title='pwned'</script> the tea";

/// Words hashed into a vector: enough for search to run without the model.
struct HashEmbedder;

impl Embedder for HashEmbedder {
    fn model_id(&self) -> &str {
        "console-hash-16"
    }

    fn dimensions(&self) -> usize {
        16
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts
            .iter()
            .map(|text| {
                let mut vector = [0.1f32; 16];
                for word in text.split_whitespace() {
                    vector[word.len() % 16] += 1.0;
                }
                let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
                vector.iter().map(|x| x / norm).collect()
            })
            .collect())
    }
}

struct Harness {
    console: Router,
    key: String,
    probe: MemoryId,
    _database: TestDatabase,
}

async fn harness(backend: Backend) -> Harness {
    let database = TestDatabase::new(backend).await;
    let store: Arc<SqlStore> = Arc::new(database.store().await);
    let settings = ApiSettings {
        operator_key: ApiKey::new(OPERATOR),
        ..ApiSettings::default()
    };
    let state = AppState::new(
        store.clone(),
        Arc::new(DatabaseKeys::new(store.clone())),
        Arc::new(Semantic::new(Arc::new(HashEmbedder), None)),
        &settings,
    );
    let api = membrain_api::router(state, &settings);
    let console = membrain_console::routes(ConsoleSettings::default(), api);
    let tenant = TenantId::parse("acme").unwrap();
    let key = ApiKey::generate();
    store
        .create_key(&tenant, &key.hash(), "test")
        .await
        .unwrap();
    let now = chrono::Utc::now();
    let memory = Memory {
        id: MemoryId::new(),
        content: PROBE.to_owned(),
        tags: vec!["<b>bold</b>".to_owned()],
        category: "general".to_owned(),
        context: "<i>context</i>".to_owned(),
        keywords: vec!["tea".to_owned()],
        links: vec![],
        evolution_history: vec![],
        evolution_history_dropped: 0,
        observed_at: now,
        created_at: now,
        updated_at: now,
    };
    let item = ImportItem {
        content_hash: content_hash(&memory.content),
        memory,
        embedding: None,
    };
    let probe = store
        .import_memories(&tenant, &[item], &Limits::default())
        .await
        .unwrap()[0]
        .0;
    Harness {
        console,
        key: key.expose_secret().to_owned(),
        probe,
        _database: database,
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Harness {
    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.console.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
            .await
            .unwrap();
        Answer {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Answer {
        let mut request = Request::get(path).header("host", HOST);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    async fn post(&self, path: &str, form: &str, origin: &str, cookie: Option<&str>) -> Answer {
        let mut request = Request::post(path)
            .header("host", HOST)
            .header("origin", origin)
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        self.send(request.body(Body::from(form.to_owned())).unwrap())
            .await
    }

    /// Signs in with `key`; returns the cookie to send back.
    async fn sign_in(&self, key: &str) -> String {
        let answer = self
            .post(
                "/console/login",
                &format!("key={key}"),
                &format!("http://{HOST}"),
                None,
            )
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        let cookie = answer.headers["set-cookie"].to_str().unwrap();
        cookie.split(';').next().unwrap().to_owned()
    }
}

fn csrf_token(body: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = body.find(marker).unwrap() + marker.len();
    body[start..start + 64].to_owned()
}

async fn signing_in_and_out_is_checked_at_every_step(backend: Backend) {
    let h = harness(backend).await;
    let origin = format!("http://{HOST}");
    let login = h.get("/console/login", None).await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(
        login.headers["content-security-policy"],
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    assert_eq!(login.headers["x-frame-options"], "DENY");

    let wrong = h
        .post(
            "/console/login",
            "key=mb_wrong_key_0000000000",
            &origin,
            None,
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.headers.get("set-cookie").is_none());
    let foreign = h
        .post(
            "/console/login",
            &format!("key={}", h.key),
            "https://evil.example",
            None,
        )
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);

    let cookie = h.sign_in(&h.key).await;
    let page = h.get("/console/memories", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains(&h.key));
    let token = csrf_token(&page.body);
    let no_token = h.post("/console/logout", "", &origin, Some(&cookie)).await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let wrong_token = h
        .post(
            "/console/logout",
            &format!("csrf_token={}", "0".repeat(64)),
            &origin,
            Some(&cookie),
        )
        .await;
    assert_eq!(wrong_token.status, StatusCode::FORBIDDEN);
    let out = h
        .post(
            "/console/logout",
            &format!("csrf_token={token}"),
            &origin,
            Some(&cookie),
        )
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let after = h.get("/console/memories", Some(&cookie)).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER, "the session ended");

    // The operator key signs in as the operator, to the keys page.
    let operator = h.sign_in(OPERATOR).await;
    let keys = h.get("/console/keys", Some(&operator)).await;
    assert_eq!(keys.status, StatusCode::OK, "{}", keys.body);
    assert!(keys.body.contains("acme"));
}

async fn stored_html_is_shown_as_text_and_bad_input_is_a_4xx_page(backend: Backend) {
    let h = harness(backend).await;
    let cookie = h.sign_in(&h.key).await;
    for path in [
        "/console/memories".to_owned(),
        format!("/console/memories/{}", h.probe),
        format!("/console/graph/{}", h.probe),
        "/console/search?q=tea".to_owned(),
    ] {
        let page = h.get(&path, Some(&cookie)).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        assert!(!page.body.contains("<script>"), "{path}");
        assert!(!page.body.contains("<b>bold"), "{path}");
        assert!(!page.body.contains("<i>context"), "{path}");
        assert!(
            page.body.contains("&lt;script&gt;"),
            "{path}: {}",
            page.body
        );
    }

    let origin = format!("http://{HOST}");
    let unknown = MemoryId::new();
    for (path, status) in [
        (
            "/console/memories/not-an-id".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/console/memories/{unknown}"),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/console/graph/{}?hops=abc", h.probe),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/console/memories?cursor=1_2".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        ("/console/keys".to_owned(), StatusCode::FORBIDDEN),
        ("/console/elsewhere".to_owned(), StatusCode::NOT_FOUND),
        ("/console/memories/".to_owned(), StatusCode::NOT_FOUND),
    ] {
        let page = h.get(&path, Some(&cookie)).await;
        assert_eq!(page.status, status, "{path}: {}", page.body);
        assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
        assert!(page.body.contains("Back to the console"), "{path}");
    }
    let slash = h.get("/console/", Some(&cookie)).await;
    assert_eq!(slash.status, StatusCode::SEE_OTHER);
    assert_eq!(slash.headers["location"], "/console");
    assert_eq!(slash.headers["x-content-type-options"], "nosniff");
    let too_large = h
        .post(
            "/console/login",
            &format!("key={}", "k".repeat(20_000)),
            &origin,
            None,
        )
        .await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
    let malformed = h
        .post(
            "/console/keys",
            "csrf_token=%zz&tenant",
            &origin,
            Some(&cookie),
        )
        .await;
    assert!(malformed.status.is_client_error(), "{}", malformed.status);
}
