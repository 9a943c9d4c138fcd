//! Revoked access-token ids, held in memory for the verifier and kept in
//! step with the store (so revocations made by another replica apply
//! within one sync period).

use std::collections::HashMap;
use std::sync::RwLock;

use warden_store::OAuthStore;

/// Revoked `jti`s, each until the token's `exp`.
#[derive(Debug, Default)]
pub struct Revocations {
    inner: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    jtis: HashMap<String, u64>,
    synced_at: Option<u64>,
}

/// Seconds of overlap between syncs, for clock skew between replicas.
const SYNC_OVERLAP: u64 = 10;
/// A revocation is kept this long past the token's `exp`: the largest
/// verification leeway, during which a verifier would still accept it.
const KEEP_PAST_EXP: u64 = warden_jose::MAX_LEEWAY;

impl Revocations {
    /// Records a revocation seen or made here.
    pub fn insert(&self, jti: String, exp: u64) {
        if let Ok(mut state) = self.inner.write() {
            state.jtis.insert(jti, exp);
        }
    }

    /// Whether `jti` is revoked. Fails closed: a poisoned lock reads as revoked.
    pub fn is_revoked(&self, jti: &str) -> bool {
        match self.inner.read() {
            Ok(state) => state.jtis.contains_key(jti),
            Err(_) => true,
        }
    }

    /// Loads revocations recorded since the last sync (all of them on the
    /// first sync and with `full`, which heals anything an incremental sync
    /// missed, e.g. a row committed late) and drops expired ones. Returns
    /// the newly seen `jti`s.
    pub async fn sync<S: OAuthStore>(
        &self,
        store: &S,
        now: u64,
        full: bool,
    ) -> Result<Vec<String>, warden_store::StoreError> {
        let since = match self.inner.read() {
            Ok(state) if !full => state.synced_at.map_or(0, |t| t.saturating_sub(SYNC_OVERLAP)),
            _ => 0,
        };
        let rows = store.revocations_since(since, now).await?;
        let mut fresh = Vec::new();
        if let Ok(mut state) = self.inner.write() {
            for (jti, exp) in rows {
                if state.jtis.insert(jti.clone(), exp).is_none() {
                    fresh.push(jti);
                }
            }
            state.jtis.retain(|_, exp| exp.saturating_add(KEEP_PAST_EXP) > now);
            state.synced_at = Some(now);
        }
        Ok(fresh)
    }

    /// How many revocations are held.
    pub fn len(&self) -> usize {
        self.inner.read().map(|s| s.jtis.len()).unwrap_or(0)
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_and_query() {
        let r = Revocations::default();
        assert!(!r.is_revoked("a"));
        r.insert("a".into(), 100);
        assert!(r.is_revoked("a"));
        assert_eq!(r.len(), 1);
    }
}
