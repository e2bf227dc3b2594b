//! `TokenValidator` against an issuer this test runs (`TestIssuer`: its own keys, discovery and
//! JWKS on 127.0.0.1).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use membrain_oauth::testing::{TestIssuer, unreachable_url};
use membrain_oauth::{OAuthSettings, SigningAlgorithm, TokenError, TokenValidator, ValidToken};
use serde_json::{Value, json};

const AUDIENCE: &str = "https://mcp.example.com/mcp";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn issuer_and_validator() -> (TestIssuer, TokenValidator) {
    let issuer = TestIssuer::start().await;
    let validator = TokenValidator::new(issuer.settings(AUDIENCE)).unwrap();
    (issuer, validator)
}

/// The description of an `Invalid` error; panics on success or `Unavailable`.
fn refused(result: Result<ValidToken, TokenError>) -> String {
    match result {
        Err(TokenError::Invalid { description }) => description,
        other => panic!("expected an invalid token, got {other:?}"),
    }
}

fn with(mut claims: Value, changes: Value) -> Value {
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

#[tokio::test]
async fn a_good_token_names_its_tenant_subject_client_and_scopes() {
    let (issuer, validator) = issuer_and_validator().await;
    let claims = issuer.claims(AUDIENCE, "team-a");
    let valid = validator.validate(&issuer.token(&claims)).await.unwrap();
    assert_eq!(valid.tenant.as_str(), "team-a");
    assert_eq!(valid.subject, "test-user");
    assert_eq!(valid.client_id.as_deref(), Some("test-client"));
    assert_eq!(valid.scopes, vec!["membrain".to_owned()]);
    let exp = claims["exp"].as_u64().unwrap();
    assert_eq!(valid.expires_at, UNIX_EPOCH + Duration::from_secs(exp));
    // Found through OpenID Connect discovery (the RFC 8414 document is missing), fetched once.
    assert_eq!(issuer.discovery_requests(), 1);
    assert_eq!(issuer.jwks_requests(), 1);

    // Cached: more tokens fetch nothing.
    for tenant in ["team-b", "c_3", &"x".repeat(64)] {
        let token = issuer.token(&issuer.claims(AUDIENCE, tenant));
        assert_eq!(
            validator.validate(&token).await.unwrap().tenant.as_str(),
            tenant
        );
    }
    assert_eq!(issuer.jwks_requests(), 1);
    // `aud` may be a list that holds us; `scp` lists and `azp` are read too.
    let claims = with(
        issuer.claims(AUDIENCE, "team-a"),
        json!({"aud": ["other", AUDIENCE], "scope": null, "scp": ["a", "b"], "client_id": null, "azp": "web"}),
    );
    let valid = validator.validate(&issuer.token(&claims)).await.unwrap();
    assert_eq!(valid.scopes, vec!["a".to_owned(), "b".to_owned()]);
    assert_eq!(valid.client_id.as_deref(), Some("web"));
}

#[tokio::test]
async fn rs256_issuers_and_a_configured_jwks_url_work() {
    let issuer = TestIssuer::start_with(SigningAlgorithm::RS256).await;
    let mut settings = issuer.settings(AUDIENCE);
    settings.jwks_url = Some(issuer.jwks_url());
    let validator = TokenValidator::new(settings).unwrap();
    validator.warm_up().await.unwrap();
    let token = issuer.token(&issuer.claims(AUDIENCE, "team-a"));
    assert_eq!(
        validator.validate(&token).await.unwrap().tenant.as_str(),
        "team-a"
    );
    assert_eq!(
        issuer.discovery_requests(),
        0,
        "jwks_url configured: no discovery"
    );
    assert_eq!(issuer.jwks_requests(), 1);

    // An issuer whose keys are RS256 only, with RS256 not allowed: nothing to verify with.
    let mut settings = issuer.settings(AUDIENCE);
    settings.algorithms = vec![SigningAlgorithm::ES256];
    let strict = TokenValidator::new(settings).unwrap();
    let description = refused(strict.validate(&token).await);
    assert!(description.contains("accepts ES256"), "{description}");
}

#[tokio::test]
async fn expiry_and_not_before_allow_the_leeway_and_no_more() {
    let (issuer, validator) = issuer_and_validator().await;
    let base = issuer.claims(AUDIENCE, "team-a");
    let token = |changes: Value| issuer.token(&with(base.clone(), changes));

    let description = refused(
        validator
            .validate(&token(json!({"exp": now() - 120})))
            .await,
    );
    assert_eq!(description, "the token has expired");
    // Within the 60 s leeway.
    validator
        .validate(&token(json!({"exp": now() - 30})))
        .await
        .unwrap();

    let description = refused(
        validator
            .validate(&token(json!({"nbf": now() + 120})))
            .await,
    );
    assert!(description.contains("not valid yet"), "{description}");
    validator
        .validate(&token(json!({"nbf": now() + 30})))
        .await
        .unwrap();

    let description = refused(validator.validate(&token(json!({"exp": null}))).await);
    assert!(description.contains("`exp`"), "{description}");
    // A string `exp` is not a time (jsonwebtoken < 10.3 skipped such checks).
    let description = refused(
        validator
            .validate(&token(json!({"exp": "9999999999"})))
            .await,
    );
    assert!(!description.is_empty());
    let description = refused(
        validator
            .validate(&token(json!({"nbf": "9999999999"})))
            .await,
    );
    assert!(!description.is_empty());

    // No leeway configured: 30 s late is late.
    let mut settings = issuer.settings(AUDIENCE);
    settings.leeway = Duration::ZERO;
    let strict = TokenValidator::new(settings).unwrap();
    refused(strict.validate(&token(json!({"exp": now() - 30}))).await);
}

#[tokio::test]
async fn another_audience_or_issuer_is_refused() {
    let (issuer, validator) = issuer_and_validator().await;
    let base = issuer.claims(AUDIENCE, "team-a");
    for aud in [
        json!("https://other.example.com/mcp"),
        json!(["https://other.example.com/mcp"]),
        json!("https://mcp.example.com/mcp/"),
        json!([]),
    ] {
        let token = issuer.token(&with(base.clone(), json!({ "aud": aud })));
        let description = refused(validator.validate(&token).await);
        assert!(description.contains("`aud`"), "{aud}: {description}");
    }
    let token = issuer.token(&with(base.clone(), json!({"aud": null})));
    let description = refused(validator.validate(&token).await);
    assert!(description.contains("`aud`"), "{description}");

    for iss in [
        json!("https://evil.example.com"),
        json!(format!("{}/", issuer.issuer_url())),
        json!(null),
    ] {
        let token = issuer.token(&with(base.clone(), json!({ "iss": iss })));
        let description = refused(validator.validate(&token).await);
        assert!(
            description.contains("another authorization server"),
            "{iss}: {description}"
        );
    }
    // A token from another issuer altogether (another key) fetches nothing of ours.
    let other = TestIssuer::start().await;
    let fetched = issuer.jwks_requests();
    let description = refused(
        validator
            .validate(&other.token(&other.claims(AUDIENCE, "team-a")))
            .await,
    );
    assert!(
        description.contains("another authorization server"),
        "{description}"
    );
    assert_eq!(issuer.jwks_requests(), fetched);
}

#[tokio::test]
async fn bad_signatures_are_refused() {
    let (issuer, validator) = issuer_and_validator().await;
    let claims = issuer.claims(AUDIENCE, "team-a");
    let description = refused(
        validator
            .validate(&issuer.token_with_foreign_key(&claims))
            .await,
    );
    assert_eq!(description, "the token's signature does not verify");

    // A good token whose payload was swapped for another tenant's.
    let good = issuer.token(&claims);
    let forged_payload = issuer.token(&issuer.claims(AUDIENCE, "team-b"));
    let mut parts: Vec<&str> = good.split('.').collect();
    parts[1] = forged_payload.split('.').nth(1).unwrap();
    let description = refused(validator.validate(&parts.join(".")).await);
    assert_eq!(description, "the token's signature does not verify");

    // No signature at all.
    let unsigned = format!("{}.{}.", parts[0], parts[1]);
    refused(validator.validate(&unsigned).await);
}

#[tokio::test]
async fn the_tenant_claim_must_name_a_valid_tenant() {
    let (issuer, validator) = issuer_and_validator().await;
    let base = issuer.claims(AUDIENCE, "team-a");
    let description = refused(
        validator
            .validate(&issuer.token(&with(base.clone(), json!({"membrain_tenant": null}))))
            .await,
    );
    assert!(
        description.contains("no `membrain_tenant` claim"),
        "{description}"
    );
    for bad in [
        json!(""),
        json!("Team-A"),
        json!("a/b"),
        json!("has space"),
        json!("x".repeat(65)),
        json!("tenant\u{e9}"),
    ] {
        let token = issuer.token(&with(base.clone(), json!({ "membrain_tenant": bad })));
        let description = refused(validator.validate(&token).await);
        assert!(
            description.contains("not a Membrain tenant name"),
            "{bad}: {description}"
        );
        assert!(
            !description.contains("Team-A"),
            "the value is not echoed: {description}"
        );
    }
    for bad in [json!(42), json!(["team-a"]), json!({"name": "team-a"})] {
        let token = issuer.token(&with(base.clone(), json!({ "membrain_tenant": bad })));
        let description = refused(validator.validate(&token).await);
        assert!(description.contains("not a string"), "{bad}: {description}");
    }

    // Another claim name, configured.
    let mut settings = issuer.settings(AUDIENCE);
    settings.tenant_claim = "custom:tenant".to_owned();
    let custom = TokenValidator::new(settings).unwrap();
    let token = issuer.token(&with(base.clone(), json!({"custom:tenant": "team-z"})));
    assert_eq!(
        custom.validate(&token).await.unwrap().tenant.as_str(),
        "team-z"
    );
    let description = refused(custom.validate(&issuer.token(&base)).await);
    assert!(
        description.contains("no `custom:tenant` claim"),
        "{description}"
    );
}

#[tokio::test]
async fn other_claims_and_header_fields_are_checked() {
    let (issuer, validator) = issuer_and_validator().await;
    let base = issuer.claims(AUDIENCE, "team-a");
    let description = refused(
        validator
            .validate(&issuer.token(&with(base.clone(), json!({"sub": null}))))
            .await,
    );
    assert!(description.contains("`sub`"), "{description}");
    // Cognito's ID tokens say so.
    let description = refused(
        validator
            .validate(&issuer.token(&with(base.clone(), json!({"token_use": "id"}))))
            .await,
    );
    assert!(description.contains("not an access token"), "{description}");
    validator
        .validate(&issuer.token(&with(base.clone(), json!({"token_use": "access"}))))
        .await
        .unwrap();

    for typ in ["at+jwt", "application/at+jwt", "JWT", "jwt"] {
        let token = issuer.token_with(&base, &json!({ "typ": typ }));
        validator.validate(&token).await.unwrap();
    }
    validator
        .validate(&issuer.token_with(&base, &json!({"typ": null})))
        .await
        .unwrap();
    for typ in ["id+jwt", "dpop+jwt", "logout+jwt"] {
        let token = issuer.token_with(&base, &json!({ "typ": typ }));
        let description = refused(validator.validate(&token).await);
        assert!(
            description.contains("not an access token"),
            "{typ}: {description}"
        );
    }
    let token = issuer.token_with(&base, &json!({"crit": ["exp"]}));
    let description = refused(validator.validate(&token).await);
    assert!(description.contains("crit"), "{description}");

    // No `kid`: fine while the issuer publishes one key, not once it publishes two.
    let no_kid = issuer.token_with(&base, &json!({"kid": null}));
    validator.validate(&no_kid).await.unwrap();
    issuer.rotate();
    let mut settings = issuer.settings(AUDIENCE);
    settings.min_refetch_interval = Duration::ZERO;
    let fresh = TokenValidator::new(settings).unwrap();
    let no_kid = issuer.token_with(&base, &json!({"kid": null}));
    let description = refused(fresh.validate(&no_kid).await);
    assert!(description.contains("names no key"), "{description}");
}

#[tokio::test]
async fn unsigned_and_algorithm_confusion_tokens_are_refused() {
    let (issuer, validator) = issuer_and_validator().await;
    let claims = issuer.claims(AUDIENCE, "team-a");
    for alg in ["none", "None", "NONE"] {
        let token = issuer.token_with(&claims, &json!({ "alg": alg }));
        assert!(token.ends_with('.'), "no signature");
        let description = refused(validator.validate(&token).await);
        assert!(
            description.contains("this server accepts RS256, ES256"),
            "{alg}: {description}"
        );
    }
    // HMAC with the issuer's public key as the secret.
    for alg in ["HS256", "HS384", "HS512"] {
        let token = issuer.token_with(&claims, &json!({ "alg": alg }));
        let description = refused(validator.validate(&token).await);
        assert!(description.contains(alg), "{alg}: {description}");
    }
    // The header says RS256 but the key (kid) is the issuer's EC key.
    let token = issuer.token_with(&claims, &json!({"alg": "RS256"}));
    let description = refused(validator.validate(&token).await);
    assert!(description.contains("is not for RS256"), "{description}");
    assert!(
        !description.contains(&issuer.current_kid()),
        "{description}"
    );
    let description = refused(
        validator
            .validate(&issuer.token_with(&claims, &json!({"alg": null})))
            .await,
    );
    assert!(description.contains("no algorithm"), "{description}");
}

#[tokio::test]
async fn malformed_and_oversize_tokens_are_refused_before_any_fetch() {
    let (issuer, validator) = issuer_and_validator().await;
    let mut claims = issuer.claims(AUDIENCE, "team-a");
    claims["padding"] = json!("x".repeat(16 * 1024));
    let big = issuer.token(&claims);
    assert!(big.len() > 16 * 1024);
    let description = refused(validator.validate(&big).await);
    assert_eq!(description, "the token is longer than 16384 bytes");
    // Far beyond the cap too: refused by length alone.
    let description = refused(validator.validate(&"a".repeat(10_000_000)).await);
    assert!(description.contains("longer than"), "{description}");

    for garbage in [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "..",
        "!!.??.**",
        "eyJ.eyJ.sig",
        "mb_0123456789",
    ] {
        refused(validator.validate(garbage).await);
    }
    assert_eq!(issuer.jwks_requests(), 0);
    assert_eq!(issuer.discovery_requests(), 0);
}

fn quick_settings(issuer: &TestIssuer) -> OAuthSettings {
    let mut settings = issuer.settings(AUDIENCE);
    settings.min_refetch_interval = Duration::from_millis(300);
    settings
}

#[tokio::test]
async fn rotated_keys_are_fetched_once_and_unknown_keys_are_rate_limited() {
    let issuer = TestIssuer::start().await;
    let validator = TokenValidator::new(quick_settings(&issuer)).unwrap();
    validator
        .validate(&issuer.token(&issuer.claims(AUDIENCE, "team-a")))
        .await
        .unwrap();
    assert_eq!(issuer.jwks_requests(), 1);

    tokio::time::sleep(Duration::from_millis(350)).await;
    let old_kid = issuer.current_kid();
    let new_kid = issuer.rotate();
    assert_ne!(old_kid, new_kid);
    let token = issuer.token(&issuer.claims(AUDIENCE, "team-a"));
    validator.validate(&token).await.unwrap();
    assert_eq!(issuer.jwks_requests(), 2, "the new kid is fetched once");
    validator.validate(&token).await.unwrap();
    assert_eq!(issuer.jwks_requests(), 2, "and then known");

    // A kid the issuer never publishes: one fetch, then refused.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let claims = issuer.claims(AUDIENCE, "team-a");
    let description = refused(
        validator
            .validate(&issuer.token_with(&claims, &json!({"kid": "no-such-key"})))
            .await,
    );
    assert!(description.contains("does not publish"), "{description}");
    assert_eq!(issuer.jwks_requests(), 3);

    // A flood of random kids right after (minted first, so the flood is quick): no fetch at all.
    let flood: Vec<String> = (0..200)
        .map(|i| issuer.token_with(&claims, &json!({ "kid": format!("random-{i}") })))
        .collect();
    for token in &flood {
        refused(validator.validate(token).await);
    }
    assert_eq!(issuer.jwks_requests(), 3);
    // Concurrently too.
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let validator = validator.clone();
            let token = issuer.token_with(&claims, &json!({ "kid": format!("parallel-{i}") }));
            tokio::spawn(async move { validator.validate(&token).await })
        })
        .collect();
    for task in tasks {
        refused(task.await.unwrap());
    }
    assert!(issuer.jwks_requests() <= 4, "{}", issuer.jwks_requests());
    // Good tokens still pass meanwhile.
    validator.validate(&token).await.unwrap();

    // Old keys retired: the next fetch drops them, and the current key still needs no fetch.
    issuer.retire_old_keys();
    assert_eq!(issuer.jwks()["keys"].as_array().unwrap().len(), 1);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let old = issuer.token_with(&claims, &json!({"kid": "nope"}));
    refused(validator.validate(&old).await);
    let before = issuer.jwks_requests();
    let new_token = issuer.token(&claims);
    validator.validate(&new_token).await.unwrap();
    assert_eq!(issuer.jwks_requests(), before);
}

#[tokio::test]
async fn concurrent_first_checks_fetch_the_keys_once() {
    let (issuer, validator) = issuer_and_validator().await;
    let token = issuer.token(&issuer.claims(AUDIENCE, "team-a"));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let validator = validator.clone();
            let token = token.clone();
            tokio::spawn(async move { validator.validate(&token).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(issuer.jwks_requests(), 1);
    assert_eq!(issuer.discovery_requests(), 1);
}

#[tokio::test]
async fn keys_expire_after_their_ttl() {
    let issuer = TestIssuer::start().await;
    let mut settings = quick_settings(&issuer);
    settings.jwks_ttl = Duration::from_millis(400);
    let validator = TokenValidator::new(settings).unwrap();
    let token = issuer.token(&issuer.claims(AUDIENCE, "team-a"));
    validator.validate(&token).await.unwrap();
    validator.validate(&token).await.unwrap();
    assert_eq!(issuer.jwks_requests(), 1);
    tokio::time::sleep(Duration::from_millis(450)).await;
    validator.validate(&token).await.unwrap();
    assert_eq!(issuer.jwks_requests(), 2);
}

#[tokio::test]
async fn an_unreachable_issuer_is_unavailable_not_invalid() {
    let url = unreachable_url().await;
    let validator = TokenValidator::new(OAuthSettings::new(url.clone(), AUDIENCE)).unwrap();
    // A token that would name this issuer (signed by someone else: never checked).
    let other = TestIssuer::start().await;
    let claims = with(other.claims(AUDIENCE, "team-a"), json!({ "iss": url }));
    let err = validator.validate(&other.token(&claims)).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert_eq!(err.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    let TokenError::Unavailable { cause } = &err else {
        unreachable!()
    };
    assert!(cause.contains("cannot discover"), "{cause}");
    assert!(
        !cause.contains(&other.token(&claims)),
        "no token in the cause"
    );
    // The bare challenge: a 503 is no verdict on the token.
    assert_eq!(
        err.www_authenticate("https://x/.well-known/oauth-protected-resource"),
        "Bearer resource_metadata=\"https://x/.well-known/oauth-protected-resource\""
    );
    assert!(validator.warm_up().await.unwrap_err().is_unavailable());

    // Configured jwks_url, unreachable.
    let mut settings = OAuthSettings::new(url.clone(), AUDIENCE);
    settings.jwks_url = Some(format!("{url}/jwks.json"));
    let validator = TokenValidator::new(settings).unwrap();
    let err = validator.validate(&other.token(&claims)).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
}

#[tokio::test]
async fn a_failing_issuer_keeps_known_keys_until_max_stale() {
    let issuer = TestIssuer::start().await;
    // Failing from the start: unavailable, and retried only after the interval.
    issuer.set_available(false);
    let mut settings = quick_settings(&issuer);
    settings.jwks_ttl = Duration::from_millis(400);
    settings.max_stale = Duration::from_millis(1500);
    let validator = TokenValidator::new(settings).unwrap();
    let token = issuer.token(&issuer.claims(AUDIENCE, "team-a"));
    let err = validator.validate(&token).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    let TokenError::Unavailable { cause } = &err else {
        unreachable!()
    };
    assert!(cause.contains("503"), "{cause}");
    let asked = issuer.discovery_requests();
    for _ in 0..20 {
        assert!(
            validator
                .validate(&token)
                .await
                .unwrap_err()
                .is_unavailable()
        );
    }
    assert_eq!(
        issuer.discovery_requests(),
        asked,
        "no retry within the interval"
    );

    // Back: keys fetched.
    issuer.set_available(true);
    tokio::time::sleep(Duration::from_millis(350)).await;
    validator.validate(&token).await.unwrap();
    // Down again: past the TTL the known keys still serve, until max_stale.
    issuer.set_available(false);
    tokio::time::sleep(Duration::from_millis(500)).await;
    validator.validate(&token).await.unwrap();
    // A kid we do not know while the issuer fails may be one we could not fetch: 503.
    let claims = issuer.claims(AUDIENCE, "team-a");
    let unknown = issuer.token_with(&claims, &json!({"kid": "brand-new"}));
    assert!(
        validator
            .validate(&unknown)
            .await
            .unwrap_err()
            .is_unavailable()
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let err = validator.validate(&token).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
}

#[tokio::test]
async fn the_validator_describes_its_resource() {
    let (issuer, validator) = issuer_and_validator().await;
    assert_eq!(
        validator.metadata_url(),
        "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
    );
    assert_eq!(
        validator.metadata(&[]),
        json!({
            "resource": AUDIENCE,
            "authorization_servers": [issuer.issuer_url()],
            "bearer_methods_supported": ["header"],
            "resource_name": "Membrain",
        })
    );
    let err = refused(validator.validate("a.b.c").await);
    let error = TokenError::Invalid { description: err };
    assert!(
        validator
            .www_authenticate(Some(&error))
            .starts_with("Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\", error=\"invalid_token\", error_description=\"")
    );
    assert_eq!(
        validator.www_authenticate(None),
        "Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\""
    );
    assert!(format!("{validator:?}").contains("TokenValidator"));
    // Bad settings are refused at construction.
    let err =
        TokenValidator::new(OAuthSettings::new("http://auth.example.com", AUDIENCE)).unwrap_err();
    assert_eq!(err.field, "issuer");
}

/// A server on 127.0.0.1 that answers every request with `status` and `body`.
async fn canned(status: &'static str, headers: &'static str, body: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _read = socket.read(&mut request).await;
                let head = format!(
                    "HTTP/1.1 {status}\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _sent = socket.write_all(head.as_bytes()).await;
                let _sent = socket.write_all(body.as_bytes()).await;
            });
        }
    });
    url
}

#[tokio::test]
async fn bad_key_sets_make_tokens_uncheckable() {
    let issuer = TestIssuer::start().await;
    let token = issuer.token(&issuer.claims(AUDIENCE, "team-a"));
    let big = format!("{{\"keys\": [], \"pad\": \"{}\"}}", "x".repeat(300 * 1024));
    let only_secret =
        json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": issuer.current_kid()}]});
    let encryption_only = json!({"keys": [
        with(issuer.jwks()["keys"][0].clone(), json!({"use": "enc"}))
    ]});
    let cases = [
        (canned("200 OK", "", big).await, "over 262144 bytes"),
        (
            canned(
                "302 Found",
                "location: http://127.0.0.1:1/\r\n",
                String::new(),
            )
            .await,
            "302",
        ),
        (canned("200 OK", "", "<html>".to_owned()).await, "not JSON"),
        (canned("200 OK", "", "{}".to_owned()).await, "no `keys`"),
        (
            canned("200 OK", "", only_secret.to_string()).await,
            "no signing key",
        ),
        (
            canned("200 OK", "", encryption_only.to_string()).await,
            "no signing key",
        ),
    ];
    for (url, expected) in cases {
        let mut settings = issuer.settings(AUDIENCE);
        settings.jwks_url = Some(url.clone());
        let validator = TokenValidator::new(settings).unwrap();
        match validator.validate(&token).await {
            Err(TokenError::Unavailable { cause }) => {
                assert!(cause.contains(expected), "{url}: {cause}")
            }
            other => panic!("{url}: expected unavailable, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn discovery_must_name_the_configured_issuer() {
    let issuer = TestIssuer::start().await;
    // The same server under another name: its metadata names 127.0.0.1, not localhost.
    let alias = issuer.issuer_url().replace("127.0.0.1", "localhost");
    let validator = TokenValidator::new(OAuthSettings::new(alias.clone(), AUDIENCE)).unwrap();
    let claims = with(issuer.claims(AUDIENCE, "team-a"), json!({ "iss": alias }));
    match validator.validate(&issuer.token(&claims)).await {
        Err(TokenError::Unavailable { cause }) => {
            assert!(cause.contains("names issuer"), "{cause}")
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert_eq!(issuer.jwks_requests(), 0);
}
