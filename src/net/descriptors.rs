//! The process's file-descriptor budget. At start-up the soft `RLIMIT_NOFILE` is raised
//! to the hard limit (as nginx's `worker_rlimit_nofile` does), and the listeners'
//! connection budgets, with a reserve, must fit under it: a gateway whose budgets the
//! kernel cannot honour would find out at its busiest hour, as `accept: Too many open
//! files` on both ports, so it refuses to start instead.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Descriptors that are not client connections and do not grow with them: stdio, the
/// runtime's epoll and wake-up descriptors, the two listeners, the state file with
/// SQLite's journal and the lock sidecar, webhook connections, and room to spare.
pub const FIXED_RESERVE: u64 = 64;

/// The limit taken when the hard limit is "unlimited": the kernel's default `nr_open`,
/// above which `setrlimit` fails for descriptors.
const UNLIMITED_AS: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "server.max_connections = {proxy} and server.admin_max_connections = {admin} need {needed} file \
     descriptors (twice the proxy connections, for the upstream connection each may hold, plus the admin \
     connections and {FIXED_RESERVE} in reserve), more than the descriptor limit of {limit} (`ulimit -n`, \
     `LimitNOFILE=`): lower the keys or raise the limit"
)]
pub struct OverBudget {
    pub proxy: usize,
    pub admin: usize,
    pub needed: u64,
    pub limit: u64,
}

/// The descriptors a gateway with these connection budgets may need at once. Each proxy
/// connection counts twice, because a proxied request holds a client and an upstream
/// connection (nginx counts `worker_connections` the same way).
pub fn needed(proxy: usize, admin: usize) -> u64 {
    let (proxy, admin) = (proxy as u64, admin as u64);
    proxy.saturating_mul(2).saturating_add(admin).saturating_add(FIXED_RESERVE)
}

/// Whether the budgets fit under `limit`; the descriptors they need when they do.
pub fn check(limit: u64, proxy: usize, admin: usize) -> Result<u64, OverBudget> {
    let needed = needed(proxy, admin);
    if needed <= limit { Ok(needed) } else { Err(OverBudget { proxy, admin, needed, limit }) }
}

/// Raises the soft descriptor limit to the hard one and returns the limit now in force.
/// A refusal by the kernel is logged and the limit already in force is kept: the budget
/// check that follows decides whether it is enough.
pub fn raise_soft_limit() -> u64 {
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    let target = maximum.unwrap_or(UNLIMITED_AS);
    let soft = current.unwrap_or(u64::MAX);
    if soft >= target {
        return soft;
    }
    match setrlimit(Resource::Nofile, Rlimit { current: Some(target), maximum }) {
        Ok(()) => getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX),
        Err(error) => {
            tracing::warn!(%error, soft, target, "could not raise the file-descriptor limit");
            soft
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_fit_under_a_common_hard_limit_and_not_under_a_1024_soft_one() {
        assert_eq!(needed(1024, 64), 2048 + 64 + FIXED_RESERVE);
        assert!(check(4096, 1024, 64).is_ok());
        assert!(check(1024, 1024, 64).is_err());
    }

    #[test]
    fn a_budget_over_the_limit_is_refused_naming_both_keys_and_the_limit() {
        let error = check(256, 1024, 64).unwrap_err();
        assert_eq!(error, OverBudget { proxy: 1024, admin: 64, needed: 2176, limit: 256 });
        let message = error.to_string();
        for part in ["server.max_connections = 1024", "server.admin_max_connections = 64", "limit of 256", "2176"] {
            assert!(message.contains(part), "{part:?} not in {message}");
        }
    }

    #[test]
    fn a_budget_that_fits_exactly_is_accepted() {
        assert_eq!(check(200, 64, 8), Ok(200));
        assert!(check(199, 64, 8).is_err());
    }

    #[test]
    fn raising_never_lowers_the_limit_in_force() {
        let before = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
        assert!(raise_soft_limit() >= before);
    }
}
