//! The admin listener: `/metrics`, `/healthz`, and the bearer-protected `/admin/*` API
//! through which an operator reads and steers the rollout of each route.

mod actor;
mod dashboard;
mod service;
mod shadow;

pub use service::AdminService;

#[cfg(test)]
mod tests;
