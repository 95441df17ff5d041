//! Log lines in Valkey's format: `pid:role dd Mon yyyy hh:mm:ss.mmm level message`, where the
//! role is `M` (primary), `S` (replica), `C` (child) or `X` (sentinel) and the level mark is
//! `.` debug, `-` verbose, `*` notice, `#` warning.

use std::io::Write;

use log::{Level, LevelFilter, Metadata, Record};
use parking_lot::Mutex;

pub struct ValkeyLogger {
    out: Mutex<Box<dyn Write + Send>>,
}

static LOGGER: std::sync::OnceLock<ValkeyLogger> = std::sync::OnceLock::new();

/// Maps `loglevel` (debug, verbose, notice, warning, nothing) to a filter.
pub fn level_filter(loglevel: &str) -> LevelFilter {
    match loglevel {
        "debug" => LevelFilter::Trace,
        "verbose" => LevelFilter::Debug,
        "notice" => LevelFilter::Info,
        "warning" => LevelFilter::Warn,
        "nothing" => LevelFilter::Off,
        _ => LevelFilter::Info,
    }
}

/// Installs the logger, writing to `logfile` (stdout when empty).
pub fn init(logfile: &str, loglevel: &str) -> std::io::Result<()> {
    let out: Box<dyn Write + Send> = if logfile.is_empty() {
        Box::new(std::io::stdout())
    } else {
        Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(logfile)?,
        )
    };
    let logger = LOGGER.get_or_init(|| ValkeyLogger {
        out: Mutex::new(out),
    });
    let _ = log::set_logger(logger);
    log::set_max_level(level_filter(loglevel));
    ferrokv_config::hooks::on_change("loglevel", |config| {
        set_level(&config.loglevel);
        Ok(())
    });
    Ok(())
}

/// Puts every panic in the log. A panic ends only the task it happens in (a connection, a
/// background job): the server goes on, and without this the only trace would be on stderr,
/// which a daemon's supervisor often drops. The report starts with the marker Valkey's crash
/// reports start with, so tools that look for one (Valkey's test suite prints it when a test
/// fails) find ours.
pub fn report_panics() {
    let default_report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let backtrace = std::backtrace::Backtrace::force_capture();
        log::warn!("=== FERROKV BUG REPORT START: Cut & paste starting from here ===");
        log::warn!("panic in thread '{}':", thread.name().unwrap_or("unnamed"));
        for line in info
            .to_string()
            .lines()
            .chain(backtrace.to_string().lines())
        {
            log::warn!("{line}");
        }
        log::warn!("=== FERROKV BUG REPORT END ===");
        default_report(info);
        if ferrokv_commands::cmd::debug::panic_is_fatal() {
            std::process::abort();
        }
    }));
}

/// Changes the level at runtime (CONFIG SET loglevel).
pub fn set_level(loglevel: &str) {
    log::set_max_level(level_filter(loglevel));
}

impl log::Log for ValkeyLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mark = match record.level() {
            Level::Error | Level::Warn => '#',
            Level::Info => '*',
            Level::Debug => '-',
            Level::Trace => '.',
        };
        let line = format!(
            "{}:{} {} {} {}\n",
            std::process::id(),
            if ferrokv_store::replica_view::is_replica() {
                'S'
            } else {
                'M'
            },
            timestamp(),
            mark,
            record.args()
        );
        let mut out = self.out.lock();
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
    }

    fn flush(&self) {
        let _ = self.out.lock().flush();
    }
}

/// `21 Nov 2026 21:22:01.123` in UTC.
fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let millis = now.subsec_millis();
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{:02} {} {} {:02}:{:02}:{:02}.{:03}",
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        millis
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    (year, month, day)
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        assert_eq!(super::civil_from_days(20_413), (2025, 11, 21));
    }
}
