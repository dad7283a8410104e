//! Networking plumbing shared by every listener cutover runs (proxy, admin, mock):
//! the accept loop with graceful shutdown, and the body types they answer with.

pub mod body;
pub mod serve;
