//! From a fresh connection to the primary's answer to PSYNC: PING, AUTH, REPLCONF, PSYNC, as
//! a Valkey replica sends them.

use super::conn::{Conn, LinkResult, Stop};

/// What the primary answered to PSYNC.
#[derive(Debug, PartialEq, Eq)]
pub enum Psync {
    /// `+FULLRESYNC <replid> <offset>`: a snapshot follows.
    Full { replid: String, offset: u64 },
    /// `+CONTINUE [<replid>]`: the stream goes on from where this replica is.
    Continue { new_replid: Option<String> },
}

/// Runs the handshake; `resume` is the (replid, offset) this replica can continue from.
/// `failover`: this server was the primary and hands its role to the one it connects to
/// (`PSYNC ... FAILOVER`, see `ferrokv_commands::replication::failover`).
pub fn run(
    conn: &mut Conn<'_>,
    resume: Option<(String, u64)>,
    failover: bool,
) -> LinkResult<Psync> {
    let config = conn.server().config.load();
    let pong = conn.command(&[b"PING"])?;
    // A primary that wants AUTH answers the PING with an error; AUTH comes next anyway.
    if pong.starts_with('-')
        && !(pong.starts_with("-NOAUTH")
            || pong.starts_with("-NOPERM")
            || pong.starts_with("-ERR operation not permitted"))
    {
        return Err(Stop::failed(format!(
            "Error reply to PING from primary: '{}'",
            &pong[1..]
        )));
    }
    log::info!("Primary replied to PING, replication can continue...");

    if !config.primaryauth.is_empty() {
        let mut args: Vec<&[u8]> = vec![b"AUTH"];
        if !config.primaryuser.is_empty() {
            args.push(config.primaryuser.as_bytes());
        }
        args.push(config.primaryauth.as_bytes());
        let reply = conn.command(&args)?;
        if let Some(error) = reply.strip_prefix('-') {
            return Err(Stop::failed(format!("Unable to AUTH to PRIMARY: {error}")));
        }
    }

    let port = if config.replica_announce_port > 0 {
        config.replica_announce_port
    } else {
        config.port
    };
    let reply = conn.command(&[b"REPLCONF", b"listening-port", port.to_string().as_bytes()])?;
    if reply.starts_with('-') {
        log::info!("(Non critical) Primary does not understand REPLCONF listening-port: {reply}");
    }
    if !config.replica_announce_ip.is_empty() {
        let reply = conn.command(&[
            b"REPLCONF",
            b"ip-address",
            config.replica_announce_ip.as_bytes(),
        ])?;
        if reply.starts_with('-') {
            log::info!("(Non critical) Primary does not understand REPLCONF ip-address: {reply}");
        }
    }
    let reply = conn.command(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])?;
    if reply.starts_with('-') {
        log::info!("(Non critical) Primary does not understand REPLCONF capa: {reply}");
    }

    let reply = match &resume {
        Some((replid, offset)) => {
            log::info!(
                "Trying a partial resynchronization (request {replid}:{}).",
                offset + 1
            );
            let next = (offset + 1).to_string();
            let mut psync: Vec<&[u8]> = vec![b"PSYNC", replid.as_bytes(), next.as_bytes()];
            if failover {
                psync.push(b"FAILOVER");
            }
            conn.command(&psync)?
        }
        None => {
            log::info!("Partial resynchronization not possible (no cached primary)");
            conn.command(&[b"PSYNC", b"?", b"-1"])?
        }
    };
    parse_psync_reply(&reply)
}

fn parse_psync_reply(reply: &str) -> LinkResult<Psync> {
    let mut words = reply.split(' ');
    match words.next() {
        Some("+FULLRESYNC") => {
            let replid = words.next().filter(|id| id.len() == 40);
            let offset = words.next().and_then(|o| o.parse::<u64>().ok());
            match (replid, offset) {
                (Some(replid), Some(offset)) => {
                    log::info!("Full resync from primary: {replid}:{offset}");
                    Ok(Psync::Full {
                        replid: replid.to_string(),
                        offset,
                    })
                }
                _ => Err(Stop::failed(format!(
                    "Primary replied with wrong +FULLRESYNC syntax: {reply}"
                ))),
            }
        }
        Some("+CONTINUE") => {
            let new_replid = words.next().filter(|id| id.len() == 40).map(str::to_string);
            log::info!("Successful partial resynchronization with primary.");
            Ok(Psync::Continue { new_replid })
        }
        _ if reply.starts_with("-NOMASTERLINK") || reply.starts_with("-LOADING") => {
            Err(Stop::failed(format!(
                "Primary is currently unable to PSYNC but should be in the future: {reply}"
            )))
        }
        _ => Err(Stop::failed(format!(
            "Unexpected reply to PSYNC from primary: {reply}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psync_replies() {
        let id = "a".repeat(40);
        assert_eq!(
            parse_psync_reply(&format!("+FULLRESYNC {id} 123")).ok(),
            Some(Psync::Full {
                replid: id.clone(),
                offset: 123
            })
        );
        assert_eq!(
            parse_psync_reply("+CONTINUE").ok(),
            Some(Psync::Continue { new_replid: None })
        );
        assert_eq!(
            parse_psync_reply(&format!("+CONTINUE {id}")).ok(),
            Some(Psync::Continue {
                new_replid: Some(id)
            })
        );
        assert!(parse_psync_reply("+FULLRESYNC x 1").is_err());
        assert!(parse_psync_reply("-ERR nope").is_err());
    }
}
