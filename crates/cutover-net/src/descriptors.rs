//! The process's file-descriptor budget. At start-up the soft `RLIMIT_NOFILE` is raised
//! to the hard limit (as nginx's `worker_rlimit_nofile` does), and the listeners'
//! connection budgets and the requests in flight (`server.max_inflight`, each of which
//! may hold an upstream connection), with reserves, must fit under it: a gateway whose
//! budgets the kernel cannot honour would find out at its busiest hour, as `accept: Too
//! many open files` on both ports, so it refuses to start instead. Requests past the
//! in-flight budget are refused at once (`proxy::admission`), never by the kernel.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Descriptors that are not client connections and do not grow with them: stdio, the
/// runtime's epoll and wake-up descriptors, the two listeners, the state file with
/// SQLite's journal and the lock sidecar, webhook connections, and room to spare.
pub const FIXED_RESERVE: u64 = 64;

/// The limit taken when the hard limit is "unlimited": the kernel's default `nr_open`,
/// above which `setrlimit` fails for descriptors.
const UNLIMITED_AS: u64 = 1 << 20;

/// Upstream connections that mirrored requests may hold besides the requests in flight
/// (the shadow copies' slots).
pub const MIRROR_RESERVE: u64 = 64;

/// A derived `server.max_inflight` is at most this many requests per client connection
/// the budget allows (HTTP/2 multiplexes), however high the descriptor limit.
const DERIVED_INFLIGHT_PER_CONNECTION: u64 = 4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "server.max_connections = {proxy}, server.max_inflight = {inflight}{derived} and server.admin_max_connections = \
     {admin} need {needed} file descriptors (a client connection each, an upstream connection per request in \
     flight, {MIRROR_RESERVE} for mirrored requests, the admin connections and {FIXED_RESERVE} in reserve), more \
     than the descriptor limit of {limit} (`ulimit -n`, `LimitNOFILE=`): lower the keys or raise the limit",
    derived = if *derived { " (its least when derived)" } else { "" }
)]
pub struct OverBudget {
    pub proxy: usize,
    pub inflight: usize,
    /// Whether `inflight` was derived (the least a derived budget allows: one per
    /// client connection), not configured.
    pub derived: bool,
    pub admin: usize,
    pub needed: u64,
    pub limit: u64,
}

/// What the budgets need under a descriptor limit, and the requests in flight they allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub needed: u64,
    pub max_inflight: usize,
}

/// The descriptors a gateway may need at once: each client connection, an upstream
/// connection per request in flight (HTTP/1 upstreams hold one each; a multiplexed
/// client connection carries many requests), the mirrors' connections, the admin
/// connections and the fixed reserve.
pub fn needed(proxy: usize, inflight: usize, admin: usize) -> u64 {
    [proxy as u64, inflight as u64, MIRROR_RESERVE, admin as u64, FIXED_RESERVE]
        .into_iter()
        .fold(0u64, u64::saturating_add)
}

/// Checks the budgets under `limit`. `max_inflight` `None` derives it: what the limit
/// leaves after the connections and the reserves, at most 4 per client connection, at
/// least one per client connection (less is refused, as the connection budget alone
/// would promise more than the process can hold).
pub fn check(limit: u64, proxy: usize, max_inflight: Option<usize>, admin: usize) -> Result<Budget, OverBudget> {
    let over = |inflight: usize, derived: bool| OverBudget {
        proxy,
        inflight,
        derived,
        admin,
        needed: needed(proxy, inflight, admin),
        limit,
    };
    let inflight = match max_inflight {
        Some(inflight) => inflight,
        None => {
            let left = limit.saturating_sub(needed(proxy, 0, admin));
            let derived = left.min((proxy as u64).saturating_mul(DERIVED_INFLIGHT_PER_CONNECTION));
            if derived < proxy as u64 {
                return Err(over(proxy, true));
            }
            usize::try_from(derived).unwrap_or(usize::MAX)
        }
    };
    let needed = needed(proxy, inflight, admin);
    if needed <= limit { Ok(Budget { needed, max_inflight: inflight }) } else { Err(over(inflight, false)) }
}

/// The soft descriptor limit in force.
pub fn current_limit() -> u64 {
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
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
        // 1024 client connections, 64 admin: 1024 + 64 + 64 + 64 before any request.
        let budget = check(4096, 1024, None, 64).unwrap();
        assert_eq!(budget.max_inflight, 4096 - 1216, "what the limit leaves");
        assert_eq!(budget.needed, 4096);
        assert!(check(1024, 1024, None, 64).is_err());
    }

    #[test]
    fn a_derived_inflight_budget_is_capped_at_four_per_connection_and_floored_at_one() {
        assert_eq!(check(1 << 20, 1024, None, 64).unwrap().max_inflight, 4096);
        // The attack machine: 2,300 descriptors.
        assert_eq!(check(2300, 1024, None, 64).unwrap().max_inflight, 1084);
        assert_eq!(check(1216 + 1024, 1024, None, 64).unwrap().max_inflight, 1024);
        let error = check(1216 + 1023, 1024, None, 64).unwrap_err();
        assert_eq!(
            error,
            OverBudget { proxy: 1024, inflight: 1024, derived: true, admin: 64, needed: 2240, limit: 2239 }
        );
    }

    #[test]
    fn a_configured_inflight_budget_must_fit() {
        assert_eq!(check(200, 8, Some(56), 8).unwrap(), Budget { needed: 200, max_inflight: 56 });
        let error = check(199, 8, Some(56), 8).unwrap_err();
        assert!(!error.derived);
        assert_eq!(error.needed, 200);
    }

    #[test]
    fn a_budget_over_the_limit_is_refused_naming_the_keys_and_the_limit() {
        let message = check(256, 1024, Some(2048), 64).unwrap_err().to_string();
        for part in [
            "server.max_connections = 1024",
            "server.max_inflight = 2048 and",
            "server.admin_max_connections = 64",
            "limit of 256",
            "3264",
        ] {
            assert!(message.contains(part), "{part:?} not in {message}");
        }
        let derived = check(256, 1024, None, 64).unwrap_err().to_string();
        assert!(derived.contains("server.max_inflight = 1024 (its least when derived)"), "{derived}");
    }

    #[test]
    fn raising_never_lowers_the_limit_in_force() {
        let before = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
        assert!(raise_soft_limit() >= before);
    }
}
