//! Checking one access token: shape and size, header (algorithm, type, key id), signature against
//! the issuer's keys, then the claims (issuer, audience, expiry, not-before, subject, tenant).

use std::fmt;
use std::sync::{Arc, Once};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Validation, decode};
use membrain_memory::TenantId;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::TokenError;
use crate::jwks::{KeyStore, Lookup};
use crate::metadata::{metadata_url_for, protected_resource_metadata};
use crate::settings::{OAuthSettings, SettingsError, SigningAlgorithm};

/// A token that passed every check: who the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidToken {
    /// The Membrain tenant, from the configured claim.
    pub tenant: TenantId,
    /// The `sub` claim: the user (or client) the token was issued to.
    pub subject: String,
    /// When the token expires (`exp`, without leeway): a cache of this verdict must not outlive it.
    pub expires_at: SystemTime,
    /// The OAuth client the token was issued through (`client_id`, else `azp`), when named.
    pub client_id: Option<String>,
    /// The token's scopes (`scope`, space-separated, else `scp`); empty when it has none.
    pub scopes: Vec<String>,
}

/// Checks bearer tokens against one issuer's keys. Cheap to clone (one `Arc`); share one per
/// process so its key cache is shared too.
#[derive(Clone)]
pub struct TokenValidator {
    inner: Arc<Inner>,
}

struct Inner {
    settings: OAuthSettings,
    metadata_url: String,
    keys: KeyStore,
}

impl fmt::Debug for TokenValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenValidator")
            .field("issuer", &self.inner.settings.issuer)
            .field("audience", &self.inner.settings.audience)
            .finish_non_exhaustive()
    }
}

/// The JOSE header fields we read, parsed by us (so `alg: none` and unknown algorithms get a
/// precise answer rather than a parse error).
#[derive(Deserialize)]
struct RawHeader {
    alg: Option<Value>,
    kid: Option<Value>,
    typ: Option<Value>,
    crit: Option<Value>,
}

impl TokenValidator {
    /// A validator for `settings`, after [`OAuthSettings::validate`]. Fetches nothing yet: keys
    /// are fetched on the first token (or by [`TokenValidator::warm_up`]).
    pub fn new(settings: OAuthSettings) -> Result<Self, SettingsError> {
        settings.validate()?;
        install_crypto_provider();
        let metadata_url = metadata_url_for(&settings.audience)
            .map_err(|err| SettingsError::new("audience", err.message))?;
        let keys = KeyStore::new(&settings)
            .map_err(|err| SettingsError::new("jwks_url", err.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                metadata_url,
                keys,
            }),
        })
    }

    pub fn settings(&self) -> &OAuthSettings {
        &self.inner.settings
    }

    /// Where this resource's metadata lives ([`metadata_url_for`] of the audience): the URL for
    /// `WWW-Authenticate`.
    pub fn metadata_url(&self) -> &str {
        &self.inner.metadata_url
    }

    /// This resource's Protected Resource Metadata, naming the configured issuer.
    pub fn metadata(&self, scopes: &[String]) -> Value {
        protected_resource_metadata(
            &self.inner.settings.audience,
            std::slice::from_ref(&self.inner.settings.issuer),
            scopes,
        )
    }

    /// The `WWW-Authenticate` value of a 401 for `error` (`None`: no token was given).
    pub fn www_authenticate(&self, error: Option<&TokenError>) -> String {
        crate::www_authenticate(&self.inner.metadata_url, error)
    }

    /// Discovers and fetches the issuer's keys now, unless fresh ones are cached; for a server's
    /// start, so a wrong issuer shows in the log before the first request. Not rate-limited:
    /// call it once.
    pub async fn warm_up(&self) -> Result<(), TokenError> {
        self.inner.keys.warm_up().await
    }

    /// Checks a bearer token (the text after `Bearer `). [`TokenError::Invalid`] says why the
    /// token is refused; [`TokenError::Unavailable`] that the issuer's keys cannot be had now.
    pub async fn validate(&self, bearer: &str) -> Result<ValidToken, TokenError> {
        let settings = &self.inner.settings;
        if bearer.len() > settings.max_token_bytes {
            return Err(TokenError::invalid(format!(
                "the token is longer than {} bytes",
                settings.max_token_bytes
            )));
        }
        let segments: Vec<&str> = bearer.split('.').collect();
        if segments.len() != 3 || segments[..2].iter().any(|s| s.is_empty()) {
            return Err(TokenError::invalid(
                "the token is not a JWT (three base64url parts joined by dots)",
            ));
        }
        let header: RawHeader = decode_segment(segments[0])
            .ok_or_else(|| TokenError::invalid("the token's header is not base64url JSON"))?;
        let alg = self.algorithm(&header)?;
        check_type(&header)?;
        if header.crit.is_some() {
            return Err(TokenError::invalid(
                "the token's header has critical extensions (`crit`) this server does not understand",
            ));
        }
        let kid = match &header.kid {
            None => None,
            Some(Value::String(kid)) => Some(kid.as_str()),
            Some(_) => return Err(TokenError::invalid("the token's `kid` is not a string")),
        };
        // The claims are looked at before the signature only to refuse another issuer's token
        // without fetching keys for it (so foreign tokens cannot make us fetch).
        let peeked: Map<String, Value> = decode_segment(segments[1])
            .ok_or_else(|| TokenError::invalid("the token's payload is not base64url JSON"))?;
        if peeked.get("iss").and_then(Value::as_str) != Some(settings.issuer.as_str()) {
            return Err(invalid_issuer());
        }

        let keys = self.inner.keys.keys_for(kid, alg).await?;
        let key = match keys.set.find(kid, alg) {
            Lookup::Found(key) => key,
            Lookup::WrongAlgorithm => {
                return Err(TokenError::invalid(format!(
                    "the issuer's key the token names (`kid`) is not for {alg}"
                )));
            }
            Lookup::Unknown => {
                if let Some(cause) = keys.failing {
                    return Err(TokenError::unavailable(cause));
                }
                return Err(TokenError::invalid(match kid {
                    Some(_) => "the token is signed with a key the issuer does not publish",
                    None => "the token names no key (`kid`) and the issuer publishes several",
                }));
            }
        };

        let mut validation = Validation::new(alg.to_jwt());
        validation.algorithms = vec![alg.to_jwt()];
        validation.leeway = settings.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = decode::<Map<String, Value>>(bearer, &key.key, &validation)
            .map_err(|err| describe(err.kind()))?
            .claims;
        self.valid_token(&claims)
    }

    fn algorithm(&self, header: &RawHeader) -> Result<SigningAlgorithm, TokenError> {
        let allowed = &self.inner.settings.algorithms;
        let names: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
        let Some(Value::String(name)) = &header.alg else {
            return Err(TokenError::invalid("the token's header names no algorithm"));
        };
        match allowed.iter().find(|a| a.as_str() == name) {
            Some(alg) => Ok(*alg),
            None => Err(TokenError::invalid(format!(
                "the token is signed with {:?}; this server accepts {}",
                printable(name),
                names.join(", ")
            ))),
        }
    }

    fn valid_token(&self, claims: &Map<String, Value>) -> Result<ValidToken, TokenError> {
        let claim = &self.inner.settings.tenant_claim;
        if let Some(token_use) = claims.get("token_use")
            && token_use.as_str() != Some("access")
        {
            return Err(TokenError::invalid(
                "the token is not an access token (`token_use`)",
            ));
        }
        let tenant = match claims.get(claim) {
            None | Some(Value::Null) => {
                return Err(TokenError::invalid(format!(
                    "the token has no `{claim}` claim naming the caller's Membrain tenant"
                )));
            }
            Some(Value::String(name)) => TenantId::parse(name).map_err(|_| {
                TokenError::invalid(format!(
                    "the token's `{claim}` claim is not a Membrain tenant name (1 to 64 lower-case letters, digits, '-' or '_')"
                ))
            })?,
            Some(_) => {
                return Err(TokenError::invalid(format!(
                    "the token's `{claim}` claim is not a string"
                )));
            }
        };
        let subject = match claims.get("sub") {
            Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
            _ => return Err(TokenError::invalid("the token's `sub` is not a string")),
        };
        let exp = claims
            .get("exp")
            .and_then(Value::as_f64)
            .filter(|exp| exp.is_finite() && *exp >= 0.0)
            .ok_or_else(|| TokenError::invalid("the token's `exp` is not a number"))?;
        if claims.get("nbf").is_some_and(|nbf| !nbf.is_number()) {
            return Err(TokenError::invalid("the token's `nbf` is not a number"));
        }
        let expires_at = UNIX_EPOCH + Duration::from_secs_f64(exp.min(4e11));
        let client_id = ["client_id", "azp"]
            .iter()
            .find_map(|name| claims.get(*name).and_then(Value::as_str))
            .map(str::to_owned);
        let scopes = match (claims.get("scope"), claims.get("scp")) {
            (Some(Value::String(scope)), _) => {
                scope.split_whitespace().map(str::to_owned).collect()
            }
            (_, Some(Value::Array(list))) => list
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            (_, Some(Value::String(scp))) => scp.split_whitespace().map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        Ok(ValidToken {
            tenant,
            subject,
            expires_at,
            client_id,
            scopes,
        })
    }
}

/// `typ`, when present, must say JWT access token (RFC 9068 §2.1: `at+jwt`) or plain `JWT`, as
/// many issuers write; any other type (an ID token's, a logout token's, DPoP proof…) is refused.
fn check_type(header: &RawHeader) -> Result<(), TokenError> {
    match &header.typ {
        None => Ok(()),
        Some(Value::String(typ)) => {
            let typ = typ.to_ascii_lowercase();
            let typ = typ.strip_prefix("application/").unwrap_or(&typ);
            if typ == "at+jwt" || typ == "jwt" {
                Ok(())
            } else {
                Err(TokenError::invalid(format!(
                    "the token's type {:?} is not an access token's (at+jwt)",
                    printable(typ)
                )))
            }
        }
        Some(_) => Err(TokenError::invalid("the token's `typ` is not a string")),
    }
}

fn invalid_issuer() -> TokenError {
    TokenError::invalid("the token was issued by another authorization server (`iss`)")
}

fn describe(kind: &ErrorKind) -> TokenError {
    TokenError::invalid(match kind {
        ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (`nbf`)".to_owned(),
        ErrorKind::InvalidAudience => "the token is not meant for this resource (`aud`)".to_owned(),
        ErrorKind::InvalidIssuer => return invalid_issuer(),
        ErrorKind::InvalidSignature => "the token's signature does not verify".to_owned(),
        ErrorKind::MissingRequiredClaim(claim) => {
            format!("the token has no `{}` claim", printable(claim))
        }
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidKeyFormat => {
            "the token's algorithm does not fit the issuer's key".to_owned()
        }
        _ => "the token is malformed".to_owned(),
    })
}

/// A short, printable rendering of a value from a token, for a description.
fn printable(raw: &str) -> String {
    raw.chars()
        .take(32)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

/// jsonwebtoken picks its crypto backend from its features; naming aws-lc-rs explicitly keeps
/// verification working even if another crate in the build turns on its RustCrypto backend too
/// (with both, jsonwebtoken's own choice would panic).
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _already_chosen = jsonwebtoken::crypto::CryptoProvider::install_default(
            &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
        );
    });
}

/// The JSON of a base64url (unpadded) JWT segment, or `None`.
fn decode_segment<T: DeserializeOwned>(segment: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    serde_json::from_slice(&bytes).ok()
}
