//! The replica side: the link to the primary (connect, handshake, PSYNC, load the snapshot,
//! apply the command stream, acknowledge). Not written yet.

use std::sync::Arc;

use ferrokv_commands::Server;

/// Starts the link thread (it idles while this server is a primary).
pub fn start(_server: Arc<Server>) {}
