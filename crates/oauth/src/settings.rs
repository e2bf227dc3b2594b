//! What an operator configures: the issuer, this server's resource URL, where the keys are, which
//! claim names the tenant, and the timings of the key cache. Checked once, with errors that name
//! the setting and say what would be accepted.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use url::Url;

/// The claim that names the caller's Membrain tenant unless configured otherwise.
pub const DEFAULT_TENANT_CLAIM: &str = "membrain_tenant";

/// Tokens longer than this are refused before any parsing.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A setting that cannot be used, with the setting's name and what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("OAuth setting `{field}`: {message}")]
pub struct SettingsError {
    pub field: &'static str,
    pub message: String,
}

impl SettingsError {
    pub(crate) fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// An asymmetric JWS algorithm an access token may be signed with. Shared-secret algorithms
/// (`HS256` …) and `none` have no variant, so a configuration cannot admit them: a server that
/// verifies with a public key must never accept a MAC made with that public key as its secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlgorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl SigningAlgorithm {
    pub const ALL: [SigningAlgorithm; 9] = [
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::ES256,
        Self::ES384,
        Self::EdDSA,
    ];

    /// The JOSE name (`"RS256"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
        }
    }

    pub(crate) fn to_jwt(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as A;
        match self {
            Self::RS256 => A::RS256,
            Self::RS384 => A::RS384,
            Self::RS512 => A::RS512,
            Self::PS256 => A::PS256,
            Self::PS384 => A::PS384,
            Self::PS512 => A::PS512,
            Self::ES256 => A::ES256,
            Self::ES384 => A::ES384,
            Self::EdDSA => A::EdDSA,
        }
    }

    /// The JWK `kty` a key for this algorithm has.
    pub(crate) fn key_type(self) -> &'static str {
        match self {
            Self::RS256 | Self::RS384 | Self::RS512 | Self::PS256 | Self::PS384 | Self::PS512 => {
                "RSA"
            }
            Self::ES256 | Self::ES384 => "EC",
            Self::EdDSA => "OKP",
        }
    }

    /// The JWK `crv` a key for this algorithm has, where the algorithm fixes one.
    pub(crate) fn curve(self) -> Option<&'static str> {
        match self {
            Self::ES256 => Some("P-256"),
            Self::ES384 => Some("P-384"),
            _ => None,
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SigningAlgorithm {
    type Err = SettingsError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let name = raw.trim();
        if let Some(found) = Self::ALL.iter().find(|a| a.as_str() == name) {
            return Ok(*found);
        }
        let why = if name.to_ascii_uppercase().starts_with("HS") {
            format!(
                "{name:?} is a shared-secret algorithm, which a resource server checking an issuer's public keys must never accept"
            )
        } else if name.eq_ignore_ascii_case("none") {
            "\"none\" means unsigned tokens, which are never accepted".to_owned()
        } else {
            format!("{name:?} is not a JWS signature algorithm this server supports")
        };
        let all: Vec<&str> = Self::ALL.iter().map(|a| a.as_str()).collect();
        Err(SettingsError::new(
            "algorithms",
            format!("{why}; use some of {}", all.join(", ")),
        ))
    }
}

/// How this server checks OAuth access tokens. Build with [`OAuthSettings::new`] and change the
/// fields whose defaults do not fit; [`OAuthSettings::validate`] (also run by
/// [`crate::TokenValidator::new`]) says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSettings {
    /// The authorization server's issuer identifier, exactly as its tokens' `iss` claim spells it
    /// (Cognito: `https://cognito-idp.<region>.amazonaws.com/<pool id>`, no trailing slash).
    pub issuer: String,
    /// This server's resource URL, e.g. `https://mcp.example.com/mcp`: every token's `aud` must
    /// contain it (RFC 8707), and it is the `resource` of the protected resource metadata.
    pub audience: String,
    /// Where the issuer publishes its keys. `None`: read `jwks_uri` from the issuer's metadata,
    /// `/.well-known/oauth-authorization-server` (RFC 8414) and then
    /// `/.well-known/openid-configuration` (OpenID Connect Discovery).
    pub jwks_url: Option<String>,
    /// The claim whose value is the caller's Membrain tenant ([`DEFAULT_TENANT_CLAIM`]).
    pub tenant_claim: String,
    /// The algorithms tokens may be signed with (default RS256 and ES256).
    pub algorithms: Vec<SigningAlgorithm>,
    /// How far `exp` and `nbf` may be off our clock (default 60 s, at most 5 minutes).
    pub leeway: Duration,
    /// How long fetched keys are used before they are fetched again (default 10 minutes).
    pub jwks_ttl: Duration,
    /// The shortest time between two fetches of the keys (or discovery), however many tokens
    /// with unknown key ids arrive, and between retries while the issuer fails (default 30 s).
    pub min_refetch_interval: Duration,
    /// While the issuer cannot be reached, keys fetched this recently are still used (default 1
    /// hour); after that every check fails as unavailable.
    pub max_stale: Duration,
    /// The whole-request timeout of one fetch from the issuer (default 5 s).
    pub fetch_timeout: Duration,
    /// Tokens longer than this are refused before parsing ([`DEFAULT_MAX_TOKEN_BYTES`]).
    pub max_token_bytes: usize,
}

impl OAuthSettings {
    /// Settings for tokens from `issuer` meant for `audience` (this server's resource URL), with
    /// every other field at its default.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks_url: None,
            tenant_claim: DEFAULT_TENANT_CLAIM.to_owned(),
            algorithms: vec![SigningAlgorithm::RS256, SigningAlgorithm::ES256],
            leeway: Duration::from_secs(60),
            jwks_ttl: Duration::from_secs(600),
            min_refetch_interval: Duration::from_secs(30),
            max_stale: Duration::from_secs(3600),
            fetch_timeout: Duration::from_secs(5),
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
        }
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let issuer = check_url("issuer", &self.issuer)?;
        if issuer.query().is_some() {
            return Err(SettingsError::new(
                "issuer",
                format!(
                    "{:?} has a query; an issuer identifier has none (RFC 8414)",
                    self.issuer
                ),
            ));
        }
        check_url("audience", &self.audience)?;
        if let Some(jwks) = &self.jwks_url {
            check_url("jwks_url", jwks)?;
        }
        let claim = &self.tenant_claim;
        if claim.is_empty() || claim.len() > 128 || !claim.chars().all(|c| c.is_ascii_graphic()) {
            return Err(SettingsError::new(
                "tenant_claim",
                format!(
                    "{claim:?} is not a claim name: use 1 to 128 printable ASCII characters without spaces, e.g. {DEFAULT_TENANT_CLAIM:?}"
                ),
            ));
        }
        if self.algorithms.is_empty() {
            return Err(SettingsError::new(
                "algorithms",
                "no algorithm is allowed, so no token could pass; use e.g. RS256, ES256",
            ));
        }
        if self.leeway > Duration::from_secs(300) {
            return Err(SettingsError::new(
                "leeway",
                format!(
                    "{} s is more clock skew than any token deserves; use at most 300 s",
                    self.leeway.as_secs()
                ),
            ));
        }
        if self.jwks_ttl.is_zero() {
            return Err(SettingsError::new(
                "jwks_ttl",
                "must be more than zero, or the keys would be fetched for every token",
            ));
        }
        if self.min_refetch_interval > self.jwks_ttl {
            return Err(SettingsError::new(
                "min_refetch_interval",
                format!(
                    "{:?} is longer than jwks_ttl ({:?}); it must not be",
                    self.min_refetch_interval, self.jwks_ttl
                ),
            ));
        }
        if self.max_stale < self.jwks_ttl {
            return Err(SettingsError::new(
                "max_stale",
                format!(
                    "{:?} is shorter than jwks_ttl ({:?}); it must not be",
                    self.max_stale, self.jwks_ttl
                ),
            ));
        }
        if self.fetch_timeout.is_zero() || self.fetch_timeout > Duration::from_secs(60) {
            return Err(SettingsError::new(
                "fetch_timeout",
                "must be more than zero and at most 60 s",
            ));
        }
        if !(1024..=1024 * 1024).contains(&self.max_token_bytes) {
            return Err(SettingsError::new(
                "max_token_bytes",
                format!(
                    "{} is out of range: use 1 KiB to 1 MiB (default {DEFAULT_MAX_TOKEN_BYTES})",
                    self.max_token_bytes
                ),
            ));
        }
        Ok(())
    }
}

/// Parses a URL the server talks to or names: absolute, `https` (plain `http` only to
/// `localhost` or a loopback address, for development and tests), no user name or password, no
/// fragment.
pub(crate) fn check_url(field: &'static str, raw: &str) -> Result<Url, SettingsError> {
    let url = Url::parse(raw).map_err(|err| {
        SettingsError::new(
            field,
            format!("{raw:?} is not an absolute URL ({err}), e.g. https://auth.example.com"),
        )
    })?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(SettingsError::new(
                field,
                format!(
                    "{raw:?} must use https (plain http is accepted only for localhost and loopback addresses)"
                ),
            ));
        }
        other => {
            return Err(SettingsError::new(
                field,
                format!("{raw:?} has scheme {other:?}; use https"),
            ));
        }
    }
    if url.host().is_none() {
        return Err(SettingsError::new(field, format!("{raw:?} has no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(SettingsError::new(
            field,
            format!("{raw:?} carries a user name or password; remove them"),
        ));
    }
    if url.fragment().is_some() {
        return Err(SettingsError::new(
            field,
            format!("{raw:?} has a fragment (#…); remove it"),
        ));
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> OAuthSettings {
        OAuthSettings::new("https://auth.example.com", "https://mcp.example.com/mcp")
    }

    fn field_of(settings: &OAuthSettings) -> &'static str {
        settings.validate().expect_err("must be refused").field
    }

    #[test]
    fn defaults_are_valid() {
        settings().validate().expect("defaults");
        let s = OAuthSettings::new(
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123",
            "https://mcp.example.com/mcp",
        );
        s.validate().expect("cognito issuer");
        assert_eq!(s.tenant_claim, "membrain_tenant");
        assert_eq!(
            s.algorithms,
            vec![SigningAlgorithm::RS256, SigningAlgorithm::ES256]
        );
    }

    #[test]
    fn http_only_for_loopback() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:9000/issuer",
            "http://[::1]:1",
        ] {
            let mut s = settings();
            s.issuer = ok.to_owned();
            s.validate().expect(ok);
        }
        let mut s = settings();
        s.issuer = "http://auth.example.com".to_owned();
        let err = s.validate().expect_err("plain http");
        assert_eq!(err.field, "issuer");
        assert!(err.message.contains("https"), "{err}");

        let mut s = settings();
        s.audience = "http://mcp.example.com/mcp".to_owned();
        assert_eq!(field_of(&s), "audience");
        let mut s = settings();
        s.jwks_url = Some("ftp://auth.example.com/jwks".to_owned());
        assert_eq!(field_of(&s), "jwks_url");
    }

    #[test]
    fn urls_are_checked() {
        for bad in [
            "auth.example.com",
            "https://auth.example.com/#x",
            "https://user:pw@auth.example.com",
            "https://auth.example.com/?tenant=a",
        ] {
            let mut s = settings();
            s.issuer = bad.to_owned();
            assert_eq!(field_of(&s), "issuer", "{bad}");
        }
        let mut s = settings();
        s.audience = "https://mcp.example.com/mcp#frag".to_owned();
        assert_eq!(field_of(&s), "audience");
    }

    #[test]
    fn other_fields_are_checked() {
        type Change = fn(&mut OAuthSettings);
        let cases: Vec<(Change, &str)> = vec![
            (|s| s.tenant_claim = String::new(), "tenant_claim"),
            (|s| s.tenant_claim = "has space".into(), "tenant_claim"),
            (|s| s.algorithms.clear(), "algorithms"),
            (|s| s.leeway = Duration::from_secs(3600), "leeway"),
            (|s| s.jwks_ttl = Duration::ZERO, "jwks_ttl"),
            (
                |s| s.min_refetch_interval = Duration::from_secs(3600),
                "min_refetch_interval",
            ),
            (|s| s.max_stale = Duration::from_secs(1), "max_stale"),
            (|s| s.fetch_timeout = Duration::ZERO, "fetch_timeout"),
            (|s| s.max_token_bytes = 10, "max_token_bytes"),
        ];
        for (change, field) in cases {
            let mut s = settings();
            change(&mut s);
            assert_eq!(field_of(&s), field);
        }
    }

    #[test]
    fn algorithms_parse_and_refuse_shared_secrets() {
        assert_eq!(
            "RS256".parse::<SigningAlgorithm>(),
            Ok(SigningAlgorithm::RS256)
        );
        assert_eq!(
            " ES256 ".parse::<SigningAlgorithm>(),
            Ok(SigningAlgorithm::ES256)
        );
        let err = "HS256".parse::<SigningAlgorithm>().expect_err("HS256");
        assert!(err.message.contains("shared-secret"), "{err}");
        let err = "none".parse::<SigningAlgorithm>().expect_err("none");
        assert!(err.message.contains("unsigned"), "{err}");
        assert!("XYZ".parse::<SigningAlgorithm>().is_err());
        for alg in SigningAlgorithm::ALL {
            assert_eq!(alg.as_str().parse::<SigningAlgorithm>(), Ok(alg));
        }
    }
}
