//! Signed-in sessions, kept in this process's memory: a random 256-bit id (the cookie) maps to
//! the key, who it is (a tenant or the operator) and the session's CSRF token.
//!
//! Sessions live only in the process that made them: with several API tasks behind a load
//! balancer, a user whose requests move to another task signs in again (ARCHITECTURE.md). That
//! keeps keys out of any shared store and out of the cookie.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use membrain_auth::ApiKey;
use membrain_memory::TenantId;
use rand::TryRngCore;
use rand::rngs::OsRng;
use subtle::ConstantTimeEq;
use tokio::time::Instant;

/// Who a session acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A tenant's API key: the memory, graph and time-series pages.
    Tenant(TenantId),
    /// The operator key: key administration (it is no tenant's key).
    Operator,
}

/// One signed-in session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The key every API call of this session carries. Never shown, logged or put in a URL.
    pub key: ApiKey,
    pub principal: Principal,
    /// Sent back in every form that changes something, and compared in constant time.
    pub csrf_token: String,
    created: Instant,
    last_seen: Instant,
}

impl Session {
    /// Whether `offered` is this session's CSRF token, in time independent of where they
    /// differ.
    pub fn csrf_matches(&self, offered: &str) -> bool {
        offered.len() == self.csrf_token.len()
            && bool::from(offered.as_bytes().ct_eq(self.csrf_token.as_bytes()))
    }
}

/// How long sessions last and how many are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLimits {
    /// A session unused this long ends.
    pub idle: Duration,
    /// A session ends this long after sign-in, used or not.
    pub absolute: Duration,
    /// The most sessions kept; signing in beyond it ends the oldest.
    pub max_sessions: usize,
    /// The most sessions of one tenant (or of the operator); signing in beyond it ends that
    /// tenant's oldest, so no tenant can sign everyone else out by signing in over and over.
    pub max_per_principal: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(60 * 60),
            absolute: Duration::from_secs(12 * 60 * 60),
            max_sessions: 10_000,
            max_per_principal: 32,
        }
    }
}

/// Why a session could not be made.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomnessUnavailable(String);

/// The sessions of this process.
#[derive(Debug)]
pub struct Sessions {
    limits: SessionLimits,
    // A std mutex: every operation is a few map steps, never held across an await.
    by_id: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(limits: SessionLimits) -> Self {
        Self {
            limits,
            by_id: Mutex::new(HashMap::new()),
        }
    }

    /// Starts a session for `key`; returns its id (the cookie's value). At the bound, the
    /// oldest session ends first.
    pub fn start(
        &self,
        key: ApiKey,
        principal: Principal,
    ) -> Result<String, RandomnessUnavailable> {
        let id = random_token()?;
        let now = Instant::now();
        let session = Session {
            key,
            principal,
            csrf_token: random_token()?,
            created: now,
            last_seen: now,
        };
        let mut by_id = self.lock();
        self.drop_expired(&mut by_id, now);
        // First the principal's own bound, then the process's: the oldest of each goes.
        let oldest_where = |by_id: &HashMap<String, Session>, of_principal: bool| {
            by_id
                .iter()
                .filter(|(_, s)| !of_principal || s.principal == session.principal)
                .min_by_key(|(_, s)| s.created)
                .map(|(id, _)| id.clone())
        };
        while by_id
            .values()
            .filter(|s| s.principal == session.principal)
            .count()
            >= self.limits.max_per_principal.max(1)
        {
            match oldest_where(&by_id, true) {
                Some(oldest) => by_id.remove(&oldest),
                None => break,
            };
        }
        while by_id.len() >= self.limits.max_sessions.max(1) {
            match oldest_where(&by_id, false) {
                Some(oldest) => by_id.remove(&oldest),
                None => break,
            };
        }
        by_id.insert(id.clone(), session);
        Ok(id)
    }

    /// The session `id` names, when it has not expired; using it restarts its idle time.
    pub fn get(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut by_id = self.lock();
        let session = by_id.get_mut(id)?;
        if self.expired(session, now) {
            by_id.remove(id);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    /// Ends the session `id` (sign-out).
    pub fn end(&self, id: &str) {
        self.lock().remove(id);
    }

    /// How many sessions are kept now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn expired(&self, session: &Session, now: Instant) -> bool {
        now.duration_since(session.last_seen) >= self.limits.idle
            || now.duration_since(session.created) >= self.limits.absolute
    }

    fn drop_expired(&self, by_id: &mut HashMap<String, Session>, now: Instant) {
        by_id.retain(|_, session| !self.expired(session, now));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock cannot leave the map half-changed (each step is one
        // map operation), so a poisoned lock is still usable.
        self.by_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// 256 random bits from the operating system, as 64 hex digits.
fn random_token() -> Result<String, RandomnessUnavailable> {
    let mut bytes = [0u8; 32];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| RandomnessUnavailable(e.to_string()))?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ApiKey {
        ApiKey::generate()
    }

    fn tenant() -> Principal {
        Principal::Tenant(TenantId::parse("acme").expect("a valid tenant"))
    }

    #[tokio::test(start_paused = true)]
    async fn sessions_end_after_idle_time_and_absolute_time() {
        let sessions = Sessions::new(SessionLimits {
            idle: Duration::from_secs(60),
            absolute: Duration::from_secs(150),
            max_sessions: 10,
            max_per_principal: 10,
        });
        let id = sessions.start(key(), tenant()).expect("a session");
        assert_eq!(id.len(), 64);
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(sessions.get(&id).is_some(), "used within the idle time");
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(sessions.get(&id).is_some(), "the idle time restarts on use");
        tokio::time::advance(Duration::from_secs(40)).await;
        assert!(sessions.get(&id).is_none(), "past the absolute time");

        let idle = sessions.start(key(), tenant()).expect("a session");
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(sessions.get(&idle).is_none(), "idle too long");
    }

    #[tokio::test(start_paused = true)]
    async fn the_oldest_session_makes_room_at_the_bound() {
        let sessions = Sessions::new(SessionLimits {
            max_sessions: 2,
            ..SessionLimits::default()
        });
        let first = sessions.start(key(), tenant()).expect("a session");
        tokio::time::advance(Duration::from_secs(1)).await;
        let second = sessions
            .start(key(), Principal::Operator)
            .expect("a session");
        tokio::time::advance(Duration::from_secs(1)).await;
        let third = sessions.start(key(), tenant()).expect("a session");
        assert_eq!(sessions.len(), 2);
        assert!(sessions.get(&first).is_none());
        assert!(sessions.get(&second).is_some());
        assert!(sessions.get(&third).is_some());
        sessions.end(&third);
        assert!(sessions.get(&third).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_tenant_signing_in_again_and_again_ends_only_its_own_sessions() {
        let sessions = Sessions::new(SessionLimits {
            max_sessions: 10,
            max_per_principal: 3,
            ..SessionLimits::default()
        });
        let operator = sessions
            .start(key(), Principal::Operator)
            .expect("a session");
        let other = Principal::Tenant(TenantId::parse("other").expect("a valid tenant"));
        let bystander = sessions.start(key(), other).expect("a session");
        let mut own = Vec::new();
        for _ in 0..20 {
            tokio::time::advance(Duration::from_secs(1)).await;
            own.push(sessions.start(key(), tenant()).expect("a session"));
        }
        assert_eq!(
            sessions.len(),
            5,
            "three of the tenant's, and the two others"
        );
        assert!(sessions.get(&operator).is_some() && sessions.get(&bystander).is_some());
        assert!(own[..17].iter().all(|id| sessions.get(id).is_none()));
        assert!(own[17..].iter().all(|id| sessions.get(id).is_some()));
    }

    #[test]
    fn csrf_tokens_match_only_themselves() {
        let sessions = Sessions::new(SessionLimits::default());
        let id = sessions.start(key(), tenant()).expect("a session");
        let session = sessions.get(&id).expect("the session");
        assert!(session.csrf_matches(&session.csrf_token.clone()));
        assert!(!session.csrf_matches(""));
        assert!(!session.csrf_matches(&"0".repeat(64)));
        assert_ne!(session.csrf_token, id, "the token is not the session id");
    }
}
