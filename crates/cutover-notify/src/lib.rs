//! Delivery to the `[[notify]]` webhooks, for alerts and rollout events alike: each
//! message goes to every notifier whose `min_severity` it reaches, through that
//! notifier's own bounded queue and worker (a receiver that hangs or fails delays only
//! its own deliveries, never a request or another notifier), with a timeout per post and
//! retries with backoff. Outcomes are counted in `cutover_notifications_total`.

mod deliver;
mod format;

pub use deliver::{DeliveryError, Notifications, Outcome};
pub use format::{Message, render};
