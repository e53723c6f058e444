//! The in-memory directory of keys, teams, users, end users and budgets that authentication
//! reads. Loaded whole from the store at start and on every refresh; admin endpoints update
//! it as they write; a key it does not know is looked up in the store once.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

use crate::FastMap;
use crate::store::budgets::BudgetRow;
use crate::store::end_users::EndUserRow;
use crate::store::keys::KeyRow;
use crate::store::teams::TeamRow;
use crate::store::users::UserRow;
use crate::store::{Store, StoreError};

/// How long "no such key" is remembered before the store is asked again.
pub const NEGATIVE_TTL_MS: i64 = 2_000;

#[derive(Default)]
pub struct Directory {
    keys: RwLock<FastMap<String, Arc<KeyRow>>>,
    teams: RwLock<FastMap<String, Arc<TeamRow>>>,
    users: RwLock<FastMap<String, Arc<UserRow>>>,
    /// std's SipHash here and in `negative`: clients choose these keys (`user` ids, wrong keys),
    /// so they keep the hasher built to resist collision floods; the other maps are keyed by
    /// what admins create.
    end_users: RwLock<HashMap<String, Arc<EndUserRow>>>,
    budgets: RwLock<FastMap<String, Arc<BudgetRow>>>,
    negative: Mutex<HashMap<String, i64>>,
    /// Bumped by every single-row change, so a full load read before one is not applied over it.
    generation: AtomicU64,
}

/// Everything read from the store in one load.
pub struct Loaded {
    pub keys: Vec<KeyRow>,
    pub teams: Vec<TeamRow>,
    pub users: Vec<UserRow>,
    pub end_users: Vec<EndUserRow>,
    pub budgets: Vec<BudgetRow>,
}

impl Loaded {
    pub async fn read(store: &Store) -> Result<Loaded, StoreError> {
        Ok(Loaded {
            keys: store.all_keys().await?,
            teams: store.all_teams().await?,
            users: store.all_users().await?,
            end_users: store.all_end_users().await?,
            budgets: store.all_budgets().await?,
        })
    }
}

fn index<T, S>(rows: &[T], id: impl Fn(&T) -> &str) -> HashMap<String, Arc<T>, S>
where
    T: Clone,
    S: std::hash::BuildHasher + Default,
{
    rows.iter()
        .map(|r| (id(r).to_owned(), Arc::new(r.clone())))
        .collect()
}

impl Directory {
    /// The change counter, to take before reading a full load.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Replaces everything with a load read when the counter was `seen`; false (and nothing
    /// replaced) if a row changed here meanwhile, since the load may predate that change.
    pub fn replace_if_unchanged(&self, l: &Loaded, seen: u64) -> bool {
        let mut keys = self.keys.write();
        if self.generation() != seen {
            return false;
        }
        *keys = index(&l.keys, |k| &k.token);
        drop(keys);
        self.replace_rest(l);
        true
    }

    /// Replaces everything with a fresh load.
    pub fn replace(&self, l: &Loaded) {
        *self.keys.write() = index(&l.keys, |k| &k.token);
        self.replace_rest(l);
    }

    fn replace_rest(&self, l: &Loaded) {
        *self.teams.write() = index(&l.teams, |t| &t.team_id);
        *self.users.write() = index(&l.users, |u| &u.user_id);
        *self.end_users.write() = index(&l.end_users, |e| &e.user_id);
        *self.budgets.write() = index(&l.budgets, |b| &b.budget_id);
        self.negative.lock().clear();
    }

    pub fn key(&self, hash: &str) -> Option<Arc<KeyRow>> {
        self.keys.read().get(hash).cloned()
    }

    pub fn team(&self, id: &str) -> Option<Arc<TeamRow>> {
        self.teams.read().get(id).cloned()
    }

    pub fn user(&self, id: &str) -> Option<Arc<UserRow>> {
        self.users.read().get(id).cloned()
    }

    pub fn end_user(&self, id: &str) -> Option<Arc<EndUserRow>> {
        self.end_users.read().get(id).cloned()
    }

    pub fn budget(&self, id: &str) -> Option<Arc<BudgetRow>> {
        self.budgets.read().get(id).cloned()
    }

    pub fn put_key(&self, k: KeyRow) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.negative.lock().remove(&k.token);
        self.keys.write().insert(k.token.clone(), Arc::new(k));
    }

    pub fn remove_key(&self, hash: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.keys.write().remove(hash);
    }

    pub fn put_team(&self, t: TeamRow) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.teams.write().insert(t.team_id.clone(), Arc::new(t));
    }

    pub fn remove_team(&self, id: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.teams.write().remove(id);
    }

    pub fn put_user(&self, u: UserRow) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.users.write().insert(u.user_id.clone(), Arc::new(u));
    }

    pub fn remove_user(&self, id: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.users.write().remove(id);
    }

    pub fn put_end_user(&self, e: EndUserRow) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.end_users
            .write()
            .insert(e.user_id.clone(), Arc::new(e));
    }

    pub fn remove_end_user(&self, id: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.end_users.write().remove(id);
    }

    pub fn put_budget(&self, b: BudgetRow) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.budgets
            .write()
            .insert(b.budget_id.clone(), Arc::new(b));
    }

    pub fn remove_budget(&self, id: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.budgets.write().remove(id);
    }

    /// Whether the store said recently that this key does not exist.
    pub fn known_missing(&self, hash: &str, now_ms: i64) -> bool {
        let mut neg = self.negative.lock();
        match neg.get(hash) {
            Some(&t) if now_ms - t < NEGATIVE_TTL_MS => true,
            Some(_) => {
                neg.remove(hash);
                false
            }
            None => false,
        }
    }

    pub fn mark_missing(&self, hash: &str, now_ms: i64) {
        let mut neg = self.negative.lock();
        if neg.len() > 100_000 {
            neg.retain(|_, t| now_ms - *t < NEGATIVE_TTL_MS);
        }
        neg.insert(hash.to_owned(), now_ms);
    }
}
