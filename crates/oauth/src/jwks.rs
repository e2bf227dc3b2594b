//! The issuer's signing keys: discovered, fetched, cached for `jwks_ttl`, fetched again for an
//! unknown key id at most once per `min_refetch_interval`, one fetch at a time.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::Jwk;
use serde_json::Value;
use tokio::time::Instant;
use url::Url;

use crate::TokenError;
use crate::settings::{OAuthSettings, SigningAlgorithm, check_url};

/// The most a discovery document or key set may weigh.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// The most keys a key set may hold (the rest are ignored).
const MAX_KEYS: usize = 64;

/// One usable public key.
pub(crate) struct PublicKey {
    pub(crate) kid: Option<String>,
    /// The JWK's `kty`.
    key_type: String,
    /// The JWK's `crv`, for EC and OKP keys.
    curve: Option<String>,
    /// The JWK's `alg`, when it pins one.
    alg: Option<String>,
    pub(crate) key: DecodingKey,
}

impl PublicKey {
    fn fits(&self, alg: SigningAlgorithm) -> bool {
        self.key_type == alg.key_type()
            && self.alg.as_deref().is_none_or(|a| a == alg.as_str())
            && match alg.curve() {
                Some(curve) => self.curve.as_deref() == Some(curve),
                None => true,
            }
    }
}

pub(crate) struct KeySet {
    keys: Vec<PublicKey>,
}

/// What looking a key up found.
pub(crate) enum Lookup<'a> {
    Found(&'a PublicKey),
    /// No key has this id (or the token names none and several keys fit).
    Unknown,
    /// The key with this id is not for this algorithm.
    WrongAlgorithm,
}

impl KeySet {
    pub(crate) fn find(&self, kid: Option<&str>, alg: SigningAlgorithm) -> Lookup<'_> {
        match kid {
            Some(kid) => match self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)) {
                Some(key) if key.fits(alg) => Lookup::Found(key),
                Some(_) => Lookup::WrongAlgorithm,
                None => Lookup::Unknown,
            },
            None => {
                let mut fitting = self.keys.iter().filter(|k| k.fits(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(only), None) => Lookup::Found(only),
                    _ => Lookup::Unknown,
                }
            }
        }
    }

    fn knows(&self, kid: Option<&str>, alg: SigningAlgorithm) -> bool {
        !matches!(self.find(kid, alg), Lookup::Unknown)
    }
}

/// The key set to check a token against, and why the latest fetch failed if it did (so a key the
/// set does not know may be one we could not fetch).
pub(crate) struct Keys {
    pub(crate) set: Arc<KeySet>,
    pub(crate) failing: Option<String>,
}

#[derive(Default)]
struct State {
    /// Where the keys are: configured, or discovered once.
    jwks_url: Option<Url>,
    /// The last key set fetched, and when.
    keys: Option<(Arc<KeySet>, Instant)>,
    /// When the last fetch (or discovery) was tried, successful or not.
    last_attempt: Option<Instant>,
    /// Why the last fetch failed, while it is the latest news.
    last_error: Option<String>,
    /// Counts fetch attempts, so a caller that waited for another's fetch sees it happened.
    attempts: u64,
}

pub(crate) struct KeyStore {
    http: reqwest::Client,
    issuer: String,
    algorithms: Vec<SigningAlgorithm>,
    ttl: Duration,
    min_interval: Duration,
    max_stale: Duration,
    state: Mutex<State>,
    /// Held while fetching: one fetch at a time.
    fetching: tokio::sync::Mutex<()>,
}

impl KeyStore {
    pub(crate) fn new(settings: &OAuthSettings) -> Result<Self, TokenError> {
        let jwks_url = match &settings.jwks_url {
            Some(raw) => Some(
                check_url("jwks_url", raw)
                    .map_err(|err| TokenError::unavailable(err.to_string()))?,
            ),
            None => None,
        };
        let http = reqwest::Client::builder()
            .connect_timeout(settings.fetch_timeout.min(Duration::from_secs(3)))
            .timeout(settings.fetch_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("membrain-oauth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| {
                TokenError::unavailable(format!("cannot build an HTTP client: {err}"))
            })?;
        Ok(Self {
            http,
            issuer: settings.issuer.clone(),
            algorithms: settings.algorithms.clone(),
            ttl: settings.jwks_ttl,
            min_interval: settings.min_refetch_interval,
            max_stale: settings.max_stale,
            state: Mutex::new(State {
                jwks_url,
                ..State::default()
            }),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fetches the keys now unless they are fresh (for a server's start, so a misconfiguration
    /// shows before the first request).
    pub(crate) async fn warm_up(&self) -> Result<(), TokenError> {
        let fresh = self
            .state()
            .keys
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() < self.ttl);
        if fresh {
            return Ok(());
        }
        let attempts = self.state().attempts;
        self.fetch_once(attempts).await;
        let state = self.state();
        match (&state.keys, &state.last_error) {
            (Some(_), None) => Ok(()),
            (_, Some(err)) => Err(TokenError::unavailable(err.clone())),
            (None, None) => Err(TokenError::unavailable("no signing keys fetched")),
        }
    }

    /// The key set to check a token with key id `kid` and algorithm `alg` against: the cached
    /// one while fresh and knowing the key; else fetched again, at most once per call and once
    /// per `min_interval`; a stale set while the issuer fails, up to `max_stale`.
    pub(crate) async fn keys_for(
        &self,
        kid: Option<&str>,
        alg: SigningAlgorithm,
    ) -> Result<Keys, TokenError> {
        let mut fetched = false;
        let mut waited = false;
        loop {
            let now = Instant::now();
            let (keys, attempts, may_fetch, last_error) = {
                let state = self.state();
                let may_fetch = !fetched
                    && state
                        .last_attempt
                        .is_none_or(|at| now.duration_since(at) >= self.min_interval);
                (
                    state.keys.clone(),
                    state.attempts,
                    may_fetch,
                    state.last_error.clone(),
                )
            };
            if let Some((set, at)) = &keys
                && now.duration_since(*at) < self.ttl
                && set.knows(kid, alg)
            {
                return Ok(Keys {
                    set: set.clone(),
                    failing: None,
                });
            }
            if may_fetch {
                self.fetch_once(attempts).await;
                fetched = true;
                continue;
            }
            // Another caller's fetch may be under way: its keys are worth waiting for.
            if !waited && self.fetching.try_lock().is_err() {
                drop(self.fetching.lock().await);
                waited = true;
                continue;
            }
            if let Some((set, at)) = keys
                && now.duration_since(at) < self.max_stale
            {
                return Ok(Keys {
                    set,
                    failing: last_error,
                });
            }
            return Err(TokenError::unavailable(last_error.unwrap_or_else(|| {
                format!(
                    "the signing keys of {} are older than allowed and cannot be fetched again yet",
                    self.issuer
                )
            })));
        }
    }

    /// Fetches the keys unless another caller's fetch began since `seen_attempts`.
    async fn fetch_once(&self, seen_attempts: u64) {
        let _one_at_a_time = self.fetching.lock().await;
        let jwks_url = {
            let mut state = self.state();
            if state.attempts != seen_attempts {
                return;
            }
            state.attempts += 1;
            state.last_attempt = Some(Instant::now());
            state.jwks_url.clone()
        };
        let result = async {
            let url = match jwks_url {
                Some(url) => url,
                None => {
                    let url = self.discover().await?;
                    self.state().jwks_url = Some(url.clone());
                    url
                }
            };
            self.fetch_keys(&url).await
        }
        .await;
        let mut state = self.state();
        match result {
            Ok(set) => {
                state.keys = Some((Arc::new(set), Instant::now()));
                state.last_error = None;
            }
            Err(cause) => {
                tracing::warn!(issuer = %self.issuer, %cause, "cannot fetch the OAuth issuer's signing keys");
                state.last_error = Some(cause);
            }
        }
    }

    /// `jwks_uri` from the issuer's metadata: RFC 8414's location first, then OpenID Connect
    /// Discovery's. The document must name the configured issuer.
    async fn discover(&self) -> Result<Url, String> {
        let issuer = Url::parse(&self.issuer).map_err(|err| err.to_string())?;
        let origin = &issuer[..url::Position::BeforePath];
        let path = issuer.path().trim_end_matches('/');
        let candidates = [
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{origin}{path}/.well-known/openid-configuration"),
        ];
        let mut failures = Vec::new();
        for candidate in candidates {
            let doc = match self.get_json(&candidate).await {
                Ok(doc) => doc,
                Err(err) => {
                    failures.push(err);
                    continue;
                }
            };
            let named = doc.get("issuer").and_then(Value::as_str);
            if named != Some(self.issuer.as_str()) {
                return Err(format!(
                    "{candidate} names issuer {named:?}, not the configured {:?}; configure the issuer exactly as its tokens' `iss` spells it",
                    self.issuer
                ));
            }
            let Some(jwks) = doc.get("jwks_uri").and_then(Value::as_str) else {
                return Err(format!("{candidate} has no `jwks_uri`; configure jwks_url"));
            };
            return check_url("jwks_uri", jwks)
                .map_err(|err| format!("{candidate}: {err}; configure jwks_url"));
        }
        Err(format!(
            "cannot discover the signing keys of {}: {}; configure jwks_url if it publishes no metadata",
            self.issuer,
            failures.join("; ")
        ))
    }

    async fn fetch_keys(&self, url: &Url) -> Result<KeySet, String> {
        let doc = self.get_json(url.as_str()).await?;
        let Some(entries) = doc.get("keys").and_then(Value::as_array) else {
            return Err(format!("{url} is not a JWK set (no `keys` array)"));
        };
        let mut keys = Vec::new();
        for entry in entries.iter().take(MAX_KEYS) {
            if let Some(key) = self.usable_key(entry) {
                keys.push(key);
            }
        }
        if keys.is_empty() {
            let allowed: Vec<&str> = self.algorithms.iter().map(|a| a.as_str()).collect();
            return Err(format!(
                "{url} holds no signing key for the allowed algorithms ({})",
                allowed.join(", ")
            ));
        }
        Ok(KeySet { keys })
    }

    /// A JWK we can verify with: a public signature key of a type some allowed algorithm uses.
    /// Keys we cannot use (encryption keys, other types, malformed ones) are skipped.
    fn usable_key(&self, entry: &Value) -> Option<PublicKey> {
        let text = |name: &str| entry.get(name).and_then(Value::as_str).map(str::to_owned);
        if text("use").is_some_and(|u| u != "sig") {
            return None;
        }
        // A symmetric key in a public key set is a misconfiguration; never verify with one.
        let key_type = text("kty")?;
        if !self.algorithms.iter().any(|a| a.key_type() == key_type) {
            return None;
        }
        let jwk: Jwk = serde_json::from_value(entry.clone()).ok()?;
        let key = DecodingKey::from_jwk(&jwk).ok()?;
        Some(PublicKey {
            kid: text("kid"),
            key_type,
            curve: text("crv"),
            alg: text("alg"),
            key,
        })
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let mut response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|err| format!("GET {url}: {}", without_url(&err)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("GET {url}: HTTP {status}"));
        }
        if response
            .content_length()
            .is_some_and(|len| len > MAX_RESPONSE_BYTES as u64)
        {
            return Err(format!("GET {url}: answer over {MAX_RESPONSE_BYTES} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| format!("GET {url}: {}", without_url(&err)))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(format!("GET {url}: answer over {MAX_RESPONSE_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|err| format!("GET {url}: not JSON ({err})"))
    }
}

/// A reqwest error's text without the URL it repeats, with its causes (where "connection
/// refused" and "timed out" are).
fn without_url(err: &reqwest::Error) -> String {
    let mut text = if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
