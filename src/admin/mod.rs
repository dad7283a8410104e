//! The admin listener: `/metrics`, `/healthz`, `/readyz`, and the bearer-protected `/admin/*` API
//! through which an operator reads and steers the rollout of each route.

mod actor;
mod dashboard;
mod readiness;
mod service;
mod shadow;

pub use readiness::Readiness;
pub use service::AdminService;

#[cfg(test)]
mod tests;
