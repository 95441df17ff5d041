//! One snapshot for the replicas that asked for a full sync at about the same time.
//!
//! The first replica to need a full sync creates a job; the job's thread waits
//! `repl-diskless-sync-delay` seconds (or until `repl-diskless-sync-max-replicas` have
//! joined) so that replicas arriving together share one snapshot, then takes the keyspace's
//! snapshot slot (one snapshot at a time: it waits for a running BGSAVE or AOF rewrite) and
//! starts the snapshot. At its instant, with every shard locked, each member gets a pinned
//! stream subscription at the same offset. The thread then runs the snapshot's saver.
//!
//! Diskless, every member has a [`Channel`] the snapshot's pieces are copied to; on disk, the
//! snapshot goes to a temporary file each member sends once it is complete (removed when the
//! last member is done with it).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use ferrokv_commands::Server;
use ferrokv_commands::propagate::Subscription;
use ferrokv_config::Config;
use ferrokv_persist::sink::SnapshotSink;
use ferrokv_persist::snapshot::Snapshot;
use parking_lot::Mutex;
use tokio::sync::{Notify, watch};

use crate::snapshot_channel::Channel;

/// How a member receives the snapshot.
pub enum Payload {
    Streamed(Arc<Channel>),
    File(Arc<FileReady>),
}

/// The snapshot file of a disk-backed sync, once complete.
#[derive(Default)]
pub struct FileReady {
    path: Mutex<Option<Result<PathBuf, String>>>,
    ready: Notify,
}

impl FileReady {
    pub async fn wait(&self) -> io::Result<PathBuf> {
        loop {
            let notified = self.ready.notified();
            if let Some(result) = self.path.lock().clone() {
                return result.map_err(io::Error::other);
            }
            notified.await;
        }
    }

    fn set(&self, result: Result<PathBuf, String>) {
        *self.path.lock() = Some(result);
        self.ready.notify_waiters();
    }
}

struct Slot {
    /// Set at the snapshot's instant.
    subscription: Option<Subscription>,
    left: bool,
    channel: Option<Arc<Channel>>,
}

struct JobState {
    accepting: bool,
    members: Vec<Slot>,
}

struct Job {
    diskless: bool,
    state: Mutex<JobState>,
    /// `None` until the snapshot starts; then its offset, or why it could not start.
    started: watch::Sender<Option<Result<u64, String>>>,
    file: Arc<FileReady>,
    temp_path: Mutex<Option<PathBuf>>,
}

impl Drop for Job {
    fn drop(&mut self) {
        // Every member is done with the file.
        if let Some(path) = self.temp_path.lock().take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The job that still accepts members.
static CURRENT: Mutex<Option<Weak<Job>>> = Mutex::new(None);

/// One replica's place in a job.
pub struct Member {
    job: Arc<Job>,
    index: usize,
    pub payload: Payload,
}

impl Member {
    /// Waits for the snapshot to start: the subscription that continues after it, and its
    /// offset.
    pub async fn started(&self) -> Result<(Subscription, u64), String> {
        let mut started = self.job.started.subscribe();
        let outcome = started
            .wait_for(Option::is_some)
            .await
            .map_err(|_| "the sync job ended".to_string())?
            .clone();
        let offset = outcome.ok_or("the sync job ended")??;
        let subscription = self.job.state.lock().members[self.index]
            .subscription
            .take()
            .ok_or("no subscription for this replica")?;
        Ok((subscription, offset))
    }

    /// This replica is done with the job (the snapshot sent, or the connection gone): a
    /// streamed snapshot stops copying to it.
    pub fn leave(&self) {
        let mut state = self.job.state.lock();
        let slot = &mut state.members[self.index];
        slot.left = true;
        if let Some(channel) = slot.channel.take() {
            channel.close();
        }
    }
}

/// Joins the job that still accepts replicas of this kind, or starts one.
pub fn join(server: &Arc<Server>, config: &Config, diskless: bool) -> Member {
    let mut current = CURRENT.lock();
    if let Some(job) = current.as_ref().and_then(Weak::upgrade)
        && job.diskless == diskless
        && let Some(member) = add_member(&job)
    {
        return member;
    }
    let (started, _) = watch::channel(None);
    let job = Arc::new(Job {
        diskless,
        state: Mutex::new(JobState {
            accepting: true,
            members: Vec::new(),
        }),
        started,
        file: Arc::default(),
        temp_path: Mutex::new(None),
    });
    let member = add_member(&job).expect("a new job accepts members");
    *current = Some(Arc::downgrade(&job));
    drop(current);
    let delay = if diskless {
        Duration::from_secs(config.repl_diskless_sync_delay.max(0) as u64)
    } else {
        Duration::ZERO
    };
    let max_replicas = config.repl_diskless_sync_max_replicas.max(0) as usize;
    let spawned = std::thread::Builder::new()
        .name("ferrokv-repl-sync".into())
        .spawn({
            let server = server.clone();
            let job = job.clone();
            move || run(&server, &job, delay, max_replicas)
        });
    if let Err(e) = spawned {
        job.started
            .send_replace(Some(Err(format!("cannot start the sync thread: {e}"))));
    }
    member
}

fn add_member(job: &Arc<Job>) -> Option<Member> {
    let mut state = job.state.lock();
    if !state.accepting {
        return None;
    }
    let channel = job.diskless.then(Channel::new);
    state.members.push(Slot {
        subscription: None,
        left: false,
        channel: channel.clone(),
    });
    let payload = match channel {
        Some(channel) => Payload::Streamed(channel),
        None => Payload::File(job.file.clone()),
    };
    Some(Member {
        job: job.clone(),
        index: state.members.len() - 1,
        payload,
    })
}

fn all_left(job: &Job) -> bool {
    job.state.lock().members.iter().all(|m| m.left)
}

/// The job's thread.
fn run(server: &Arc<Server>, job: &Arc<Job>, delay: Duration, max_replicas: usize) {
    let until = Instant::now() + delay;
    while Instant::now() < until {
        let joined = job.state.lock().members.len();
        if max_replicas > 0 && joined >= max_replicas {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    job.state.lock().accepting = false;
    {
        let mut current = CURRENT.lock();
        if current
            .as_ref()
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(job)))
        {
            *current = None;
        }
    }
    // One snapshot at a time.
    while !server.persistence.claim_for_replica_sync() {
        if all_left(job) {
            job.started
                .send_replace(Some(Err("every replica left".into())));
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let result = snapshot(server, job);
    server.persistence.release_replica_sync();
    match result {
        Ok(path) => job.file.set(Ok(path.unwrap_or_default())),
        Err(e) => {
            log::warn!("Snapshot for replicas failed: {e}");
            job.started.send_if_modified(|started| {
                if started.is_none() {
                    *started = Some(Err(e.clone()));
                    true
                } else {
                    false
                }
            });
            job.file.set(Err(e));
        }
    }
}

/// Takes and runs the snapshot; returns the file's path for a disk-backed sync.
fn snapshot(server: &Arc<Server>, job: &Arc<Job>) -> Result<Option<PathBuf>, String> {
    let config = server.config.load();
    let (sink, path): (Box<dyn SnapshotSink>, Option<PathBuf>) = if job.diskless {
        let channels = job
            .state
            .lock()
            .members
            .iter()
            .filter_map(|m| m.channel.clone())
            .collect();
        (Box::new(FanOut { channels }), None)
    } else {
        let dir = std::env::current_dir().map_err(|e| e.to_string())?;
        let path = dir.join(format!(
            "temp-repl-{}-{}.rdb",
            std::process::id(),
            rand::random::<u32>()
        ));
        let file = File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        *job.temp_path.lock() = Some(path.clone());
        (
            Box::new(TempFile {
                out: BufWriter::with_capacity(1 << 20, file),
            }),
            Some(path),
        )
    };
    let mut offset = 0;
    // A replica feeding its own replicas: no command from its primary is half applied.
    let applying = server.replication.quiesce_link(server.stream);
    // Its aux fields name the database the stream goes on in (`repl-stream-db`).
    let options = ferrokv_commands::persistence::save_options(server, &config);
    let snapshot = Snapshot::start_with(&server.keyspace, sink, options, || {
        let mut state = job.state.lock();
        for member in state.members.iter_mut().filter(|m| !m.left) {
            let subscription = server.stream.subscribe(true);
            offset = subscription.offset;
            member.subscription = Some(subscription);
        }
        Ok(())
    });
    drop(applying);
    let snapshot = match snapshot {
        Ok(snapshot) => snapshot,
        Err(e) => {
            unsubscribe_unclaimed(server, job);
            return Err(e);
        }
    };
    log::info!(
        "Starting BGSAVE for SYNC with target: {}",
        if job.diskless {
            "replicas sockets"
        } else {
            "disk"
        }
    );
    job.started.send_replace(Some(Ok(offset)));
    if job.diskless {
        let channels: Vec<Arc<Channel>> = job
            .state
            .lock()
            .members
            .iter()
            .filter_map(|m| m.channel.clone())
            .collect();
        snapshot.set_throttle(Box::new(move || {
            for channel in &channels {
                channel.wait_for_room();
            }
        }));
    }
    let report = snapshot.run(&server.keyspace);
    unsubscribe_unclaimed(server, job);
    let report = report?;
    log::info!(
        "Snapshot for replicas done: {} keys, {} bytes in {:.3} seconds",
        report.keys,
        report.bytes,
        report.elapsed.as_secs_f64()
    );
    Ok(path)
}

/// Subscriptions made for members that left before taking theirs.
fn unsubscribe_unclaimed(server: &Server, job: &Job) {
    let mut state = job.state.lock();
    for member in state.members.iter_mut().filter(|m| m.left) {
        if let Some(subscription) = member.subscription.take() {
            server.stream.unsubscribe(subscription);
        }
    }
}

/// Copies each piece to every replica still receiving; fails (aborting the snapshot) only
/// when none is left.
struct FanOut {
    channels: Vec<Arc<Channel>>,
}

impl SnapshotSink for FanOut {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut delivered = false;
        for channel in &self.channels {
            delivered |= channel.push(bytes).is_ok();
        }
        if delivered {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "every replica left",
            ))
        }
    }

    fn commit(self: Box<Self>) -> io::Result<()> {
        for channel in self.channels {
            channel.finish(true);
        }
        Ok(())
    }

    fn discard(self: Box<Self>) {
        for channel in self.channels {
            channel.finish(false);
        }
    }
}

/// A disk-backed sync's file: complete once flushed (it only has to outlive the sync).
struct TempFile {
    out: BufWriter<File>,
}

impl SnapshotSink for TempFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)
    }

    fn commit(mut self: Box<Self>) -> io::Result<()> {
        self.out.flush()
    }

    fn discard(self: Box<Self>) {}
}
