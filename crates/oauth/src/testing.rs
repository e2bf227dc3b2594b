//! An authorization server for tests (feature `test-support`): its own keys, OpenID Connect
//! discovery and a JWKS served over HTTP on 127.0.0.1, and tokens minted with any claims or
//! header.
//!
//! ```no_run
//! # async fn example() {
//! use membrain_oauth::{TokenValidator, testing::TestIssuer};
//!
//! let issuer = TestIssuer::start().await;
//! let audience = "http://127.0.0.1:8100/mcp";
//! let validator = TokenValidator::new(issuer.settings(audience)).unwrap();
//! let token = issuer.token(&issuer.claims(audience, "team-a"));
//! let valid = validator.validate(&token).await.unwrap();
//! assert_eq!(valid.tenant.as_str(), "team-a");
//! # }
//! ```
//!
//! The server serves `/.well-known/openid-configuration` (as Cognito does; there is no RFC 8414
//! document, so discovery's fallback is what runs) and `/jwks.json`, and stops when the
//! `TestIssuer` is dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, RsaKeyPair,
};
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;

use crate::{OAuthSettings, SigningAlgorithm};

/// One signing key: its private half and its public JWK.
struct TestKey {
    kid: String,
    alg: SigningAlgorithm,
    encoding: EncodingKey,
    /// The public key's bytes (an EC point or an RSA `RSAPublicKey`), the "secret" of an
    /// algorithm-confusion token.
    public: Vec<u8>,
    jwk: Value,
}

impl TestKey {
    fn generate(alg: SigningAlgorithm) -> Self {
        let kid = format!("test-{}", random_hex(8));
        match alg {
            SigningAlgorithm::ES256 => {
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &SystemRandom::new(),
                )
                .expect("generate a P-256 key");
                let pair =
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
                        .expect("read the P-256 key back");
                let point = pair.public_key().as_ref().to_vec();
                // Uncompressed: 0x04, x (32 bytes), y (32 bytes).
                let jwk = json!({
                    "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                    "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                    "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
                });
                Self {
                    encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
                    public: point,
                    kid,
                    alg,
                    jwk,
                }
            }
            SigningAlgorithm::RS256 => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("generate an RSA key");
                let pkcs8 = pair.as_der().expect("RSA key as PKCS#8");
                let pkcs1 = pkcs1_from_pkcs8(pkcs8.as_ref()).expect("PKCS#1 inside PKCS#8");
                let parts = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                let jwk = json!({
                    "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                    "n": URL_SAFE_NO_PAD.encode(&parts.n),
                    "e": URL_SAFE_NO_PAD.encode(&parts.e),
                });
                Self {
                    encoding: EncodingKey::from_rsa_der(&pkcs1),
                    public: pair.public_key().as_ref().to_vec(),
                    kid,
                    alg,
                    jwk,
                }
            }
            other => panic!("TestIssuer makes RS256 and ES256 keys, not {other}"),
        }
    }
}

struct Published {
    /// Every key in the JWKS; the last one signs.
    keys: Vec<TestKey>,
    available: bool,
}

struct Shared {
    issuer: String,
    published: Mutex<Published>,
    jwks_requests: AtomicUsize,
    discovery_requests: AtomicUsize,
}

impl Shared {
    fn published(&self) -> std::sync::MutexGuard<'_, Published> {
        self.published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// An authorization server on `127.0.0.1:<random port>` for tests. See the module's example.
pub struct TestIssuer {
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl std::fmt::Debug for TestIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestIssuer")
            .field("issuer", &self.shared.issuer)
            .finish_non_exhaustive()
    }
}

impl TestIssuer {
    /// An issuer signing with an ES256 (P-256) key, serving from now on.
    pub async fn start() -> Self {
        Self::start_with(SigningAlgorithm::ES256).await
    }

    /// An issuer signing with a key for `alg`: [`SigningAlgorithm::ES256`] or
    /// [`SigningAlgorithm::RS256`] (2048-bit).
    pub async fn start_with(alg: SigningAlgorithm) -> Self {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind the test issuer");
        let port = listener.local_addr().expect("test issuer address").port();
        let shared = Arc::new(Shared {
            issuer: format!("http://127.0.0.1:{port}"),
            published: Mutex::new(Published {
                keys: vec![TestKey::generate(alg)],
                available: true,
            }),
            jwks_requests: AtomicUsize::new(0),
            discovery_requests: AtomicUsize::new(0),
        });
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks.json", get(jwks))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _stopped = axum::serve(listener, router).await;
        });
        Self { shared, server }
    }

    /// The issuer identifier (`http://127.0.0.1:<port>`), also the `iss` of [`TestIssuer::claims`].
    pub fn issuer_url(&self) -> &str {
        &self.shared.issuer
    }

    /// Where the JWKS is served.
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks.json", self.shared.issuer)
    }

    /// Settings that accept this issuer's tokens for `audience` (jwks_url left to discovery).
    pub fn settings(&self, audience: &str) -> OAuthSettings {
        OAuthSettings::new(self.issuer_url(), audience)
    }

    /// Claims of a good access token for `audience` and `tenant`: `iss`, `aud`, `sub`
    /// (`test-user`), `iat`, `exp` (in 10 minutes), `jti`, `client_id` (`test-client`), `scope`
    /// (`membrain`) and `membrain_tenant`. Change or remove fields to make bad ones.
    pub fn claims(&self, audience: &str, tenant: &str) -> Value {
        let now = now();
        json!({
            "iss": self.shared.issuer,
            "aud": audience,
            "sub": "test-user",
            "iat": now,
            "exp": now + 600,
            "jti": random_hex(16),
            "client_id": "test-client",
            "scope": "membrain",
            crate::DEFAULT_TENANT_CLAIM: tenant,
        })
    }

    /// A token with these claims, signed with the current key, header
    /// `{"alg", "typ": "at+jwt", "kid"}`.
    pub fn token(&self, claims: &Value) -> String {
        self.token_with(claims, &json!({}))
    }

    /// A token whose header is the default one with `header`'s fields put over it (`null`
    /// removes a field): e.g. `{"kid": "other"}`, `{"typ": "JWT"}`, `{"kid": null}`. The
    /// signature follows the header's `alg`: the current key's own algorithm signs with it;
    /// `"none"` (in any case) gives an empty signature; `HS256`/`HS384`/`HS512` a MAC whose secret is the
    /// current public key (the algorithm-confusion attack); any other algorithm is signed with
    /// the key's own (a mismatch).
    pub fn token_with(&self, claims: &Value, header: &Value) -> String {
        let published = self.shared.published();
        let key = published.keys.last().expect("a current key");
        sign(key, &key.encoding, claims, header)
    }

    /// A token with these claims and the current key id, signed by a key the issuer does not
    /// publish: its signature must not verify.
    pub fn token_with_foreign_key(&self, claims: &Value) -> String {
        let published = self.shared.published();
        let key = published.keys.last().expect("a current key");
        let stranger = TestKey::generate(key.alg);
        sign(key, &stranger.encoding, claims, &json!({}))
    }

    /// A new signing key (same algorithm) with a new key id; the old keys stay published (as in
    /// a real rotation) until [`TestIssuer::retire_old_keys`]. Returns the new key id.
    pub fn rotate(&self) -> String {
        let mut published = self.shared.published();
        let alg = published.keys.last().expect("a current key").alg;
        let key = TestKey::generate(alg);
        let kid = key.kid.clone();
        published.keys.push(key);
        kid
    }

    /// Stops publishing every key but the current one.
    pub fn retire_old_keys(&self) {
        let mut published = self.shared.published();
        let keep = published.keys.len() - 1;
        published.keys.drain(..keep);
    }

    /// The current signing key's id.
    pub fn current_kid(&self) -> String {
        let published = self.shared.published();
        published.keys.last().expect("a current key").kid.clone()
    }

    /// The JWKS as served now.
    pub fn jwks(&self) -> Value {
        jwks_document(&self.shared.published())
    }

    /// `false`: discovery and the JWKS answer 503 until set back to `true`.
    pub fn set_available(&self, available: bool) {
        self.shared.published().available = available;
    }

    /// How many times the JWKS was requested (answered or not).
    pub fn jwks_requests(&self) -> usize {
        self.shared.jwks_requests.load(Ordering::SeqCst)
    }

    /// How many times the discovery document was requested.
    pub fn discovery_requests(&self) -> usize {
        self.shared.discovery_requests.load(Ordering::SeqCst)
    }
}

/// `http://127.0.0.1:<port>` where nothing listens (a port bound and released): an issuer that
/// cannot be reached.
pub async fn unreachable_url() -> String {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind a port");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

async fn discovery(State(shared): State<Arc<Shared>>) -> Result<Json<Value>, StatusCode> {
    shared.discovery_requests.fetch_add(1, Ordering::SeqCst);
    if !shared.published().available {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    let issuer = &shared.issuer;
    Ok(Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/jwks.json"),
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "code_challenge_methods_supported": ["S256"],
    })))
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Result<Json<Value>, StatusCode> {
    shared.jwks_requests.fetch_add(1, Ordering::SeqCst);
    let published = shared.published();
    if !published.available {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    Ok(Json(jwks_document(&published)))
}

fn jwks_document(published: &Published) -> Value {
    json!({ "keys": published.keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
}

fn sign(key: &TestKey, signer: &EncodingKey, claims: &Value, overrides: &Value) -> String {
    let mut header = Map::new();
    header.insert("alg".into(), json!(key.alg.as_str()));
    header.insert("typ".into(), json!("at+jwt"));
    header.insert("kid".into(), json!(key.kid));
    if let Some(overrides) = overrides.as_object() {
        for (name, value) in overrides {
            if value.is_null() {
                header.remove(name);
            } else {
                header.insert(name.clone(), value.clone());
            }
        }
    }
    let encode = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let message = format!(
        "{}.{}",
        encode(&Value::Object(header.clone())),
        encode(claims)
    );
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let signature = match alg {
        none if none.eq_ignore_ascii_case("none") => String::new(),
        "HS256" | "HS384" | "HS512" => {
            let hs = match alg {
                "HS256" => Algorithm::HS256,
                "HS384" => Algorithm::HS384,
                _ => Algorithm::HS512,
            };
            jsonwebtoken::crypto::sign(
                message.as_bytes(),
                &EncodingKey::from_secret(&key.public),
                hs,
            )
            .expect("HMAC")
        }
        _ => {
            jsonwebtoken::crypto::sign(message.as_bytes(), signer, key.alg.to_jwt()).expect("sign")
        }
    };
    format!("{message}.{signature}")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn random_hex(bytes: usize) -> String {
    use aws_lc_rs::rand::SecureRandom as _;
    let mut buf = vec![0u8; bytes];
    SystemRandom::new().fill(&mut buf).expect("random bytes");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `RSAPrivateKey` (PKCS#1) inside a PKCS#8 `PrivateKeyInfo`:
/// `SEQUENCE { INTEGER version, SEQUENCE algorithm, OCTET STRING privateKey, … }`.
fn pkcs1_from_pkcs8(der: &[u8]) -> Option<Vec<u8>> {
    fn read(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[n..])
        };
        if rest.len() < len {
            return None;
        }
        Some((tag, &rest[..len], &rest[len..]))
    }
    let (0x30, info, _) = read(der)? else {
        return None;
    };
    let (0x02, _version, rest) = read(info)? else {
        return None;
    };
    let (0x30, _algorithm, rest) = read(rest)? else {
        return None;
    };
    let (0x04, key, _) = read(rest)? else {
        return None;
    };
    Some(key.to_vec())
}
