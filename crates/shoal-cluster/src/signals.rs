//! SIGINT/SIGTERM handling: the cluster's primary, `shoal serve` and `shoal balance`.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};

/// Signals arriving this soon after the first are the same request, not a second one:
/// `timeout`, some supervisors and a terminal's Ctrl-C signal the process and its group.
const REPEAT_GRACE: Duration = Duration::from_secs(1);

/// Completes on the first SIGINT or SIGTERM, logging `what` (what the process does now).
/// Another one (after [`REPEAT_GRACE`]) exits at once, without waiting for the graceful
/// shutdown to finish.
///
/// # Errors
/// The signal handlers cannot be installed.
pub fn shutdown_signal(what: &'static str) -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        let name = tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        };
        let first = Instant::now();
        tracing::info!(signal = name, "{what} (signal again to exit at once)");
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
                if first.elapsed() >= REPEAT_GRACE {
                    break;
                }
                tracing::debug!("repeated signal ignored");
            }
            tracing::warn!("second signal: exiting without waiting");
            std::process::exit(130);
        });
    })
}
