//! Everything a request handler can reach, built once at start-up.

use std::sync::Arc;
use std::time::Instant;

use crate::auth::Auth;
use crate::config::Config;
use crate::router::Router;
use crate::spend::SpendSink;
use crate::spend::prices::PriceTable;
use crate::store::Store;

pub type AppState = Arc<State>;

pub struct State {
    pub config: Arc<Config>,
    pub router: Router,
    pub auth: Arc<Auth>,
    pub prices: PriceTable,
    pub spend: SpendSink,
    pub store: Option<Store>,
    pub started: Instant,
}
