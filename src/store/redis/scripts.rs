//! The server-side scripts, one per operation. Each is `common.lua` (shared helpers) followed by
//! the operation's own file, loaded once per server and run with `EVALSHA` (`redis::Script`
//! loads it again when the server answers `NOSCRIPT`, for example after a restart).

use redis::Script;

macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("scripts/common.lua"),
            include_str!(concat!("scripts/", $file))
        ))
    };
}

/// Every script a [`RedisStore`](super::RedisStore) runs.
#[derive(Debug)]
pub(super) struct Scripts {
    pub(super) create_node: Script,
    pub(super) reserve: Script,
    pub(super) commit: Script,
    pub(super) release: Script,
    pub(super) extend: Script,
    pub(super) sweep: Script,
    pub(super) funds: Script,
    pub(super) set_state: Script,
    pub(super) set_rate: Script,
    pub(super) record: Script,
    pub(super) remove_node: Script,
    pub(super) read: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Scripts {
            create_node: script!("create_node.lua"),
            reserve: script!("reserve.lua"),
            commit: script!("commit.lua"),
            release: script!("release.lua"),
            extend: script!("extend.lua"),
            sweep: script!("sweep.lua"),
            funds: script!("funds.lua"),
            set_state: script!("set_state.lua"),
            set_rate: script!("set_rate.lua"),
            record: script!("record.lua"),
            remove_node: script!("remove_node.lua"),
            read: script!("read.lua"),
        }
    }
}
