//! Keyspace notifications: publishing what commands did to keys.
//!
//! Commands report events with [`Ctx::notify`](crate::context::Ctx::notify) (and the store
//! reports `new`, `expired` and field expiry itself) into the thread's queue in
//! `ferrokv_store::events`; [`flush`] publishes the queue through the Pub/Sub registry after
//! each command, after clients parked on keys were served, and after background expiry and
//! eviction. Publishing after the command keeps pub/sub locks out of the keyspace's critical
//! sections; the order of the events is the order they were reported, as in Valkey.
//!
//! With `notify-keyspace-events` empty (the default) the mask is 0 and reporting is one
//! relaxed load.

use std::sync::Once;

use ferrokv_config::Config;
use ferrokv_store::events::{self, class};

use crate::pubsub::{self, Limits};
use crate::server::Server;

/// Makes the server's current `notify-keyspace-events` take effect, and keeps it so on
/// every later change (CONFIG SET, config reload).
pub fn install(config: &Config) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        ferrokv_config::hooks::on_change("notify-keyspace-events", |config| {
            apply(config);
            Ok(())
        });
    });
    apply(config);
}

fn apply(config: &Config) {
    events::set_notify_mask(class::parse(config.notify_keyspace_events.letters()));
}

/// Publishes every notification waiting on this thread.
pub fn flush(server: &Server) {
    if !events::notifications_pending() {
        return;
    }
    let pending = events::take_notifications();
    let mask = events::notify_mask();
    let config = server.config.load();
    let limits = Limits::from_directive(&config.client_output_buffer_limit);
    let now_ms = ferrokv_store::clock::now_ms();
    let mut channel = Vec::with_capacity(64);
    for note in pending {
        if mask & class::KEYSPACE != 0 {
            channel.clear();
            channel.extend_from_slice(format!("__keyspace@{}__:", note.db).as_bytes());
            channel.extend_from_slice(&note.key);
            pubsub::publish(
                server,
                limits,
                false,
                &channel,
                note.event.as_bytes(),
                now_ms,
            );
        }
        if mask & class::KEYEVENT != 0 {
            let channel = format!("__keyevent@{}__:{}", note.db, note.event);
            pubsub::publish(server, limits, false, channel.as_bytes(), &note.key, now_ms);
        }
    }
}
