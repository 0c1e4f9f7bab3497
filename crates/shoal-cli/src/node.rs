//! `shoal serve`: one node (in-memory adapter, or Redis with `--redis`), the demo chat and
//! `/health`. (The module is not called `serve` so that its log target differs from the
//! library's `shoal::serve`: this binary is also named `shoal`.)

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal::{ServerConfig, SocketIo};
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::ServeArgs;
use crate::config::ServeConfig;
use crate::web::{self, WebService};

/// Runs `shoal serve` to the end; the process's exit status.
pub(crate) fn run(args: &ServeArgs) -> ExitCode {
    let config = match ServeConfig::load(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("shoal: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.check_config {
        return check(&config);
    }
    let filter = match config.validate().and_then(|()| config.log_filter()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("shoal: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(cause = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `--check-config`: prints the merged configuration (valid TOML, with the demo
/// directory found as a comment), then whether it is valid.
fn check(config: &ServeConfig) -> ExitCode {
    println!("# shoal serve: merged configuration (defaults < file < flags)");
    if config.demo && config.demo_dir.is_none() {
        match web::find_demo_dir(None) {
            Some(dir) => println!("# demo_dir not set: would serve {}", dir.display()),
            None => println!("# demo_dir not set, and no web/index.html found: the demo page would be 404"),
        }
    }
    print!("{}", config.to_toml());
    match config.validate() {
        Ok(()) => {
            eprintln!("shoal: configuration is valid");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shoal: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: ServeConfig) -> Result<(), String> {
    let settings = config.socketio_config().map_err(|e| e.to_string())?;
    let mut builder = SocketIo::builder().config(settings);
    if let Some(redis) = config.redis_adapter_config() {
        let url = crate::config::redact_url(&redis.connection.url);
        let mode = match config.redis_mode {
            crate::config::RedisModeName::Classic => "classic".to_owned(),
            crate::config::RedisModeName::Sharded => {
                format!("sharded, {}", config.redis_subscription_mode.unwrap_or_default().mode().as_str())
            }
        };
        let key = redis.key.clone();
        let factory = shoal_redis::RedisAdapterFactory::connect(redis)
            .await
            .map_err(|e| format!("cannot start the Redis adapter ({url}): {e}"))?;
        tracing::info!(redis = %url, %mode, %key, "Redis adapter connected");
        builder = builder.adapter(factory);
    }
    let io = builder.build().map_err(|e| format!("invalid configuration: {e}"))?;
    // the main namespace always accepts connections; the demo adds its chat to it
    let _ = io.of("/");
    let demo_dir = if config.demo {
        crate::demo::install(&io);
        let dir = web::find_demo_dir(config.demo_dir.as_deref());
        check_demo_dir(dir.as_deref());
        dir
    } else {
        None
    };

    let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port))
        .await
        .map_err(|e| format!("cannot listen on {}:{}: {e}", config.host, config.port))?;
    let addr = listener.local_addr().map_err(|e| format!("cannot read the bound address: {e}"))?;
    // scripts and tests wait for this line
    tracing::info!(node = %io.node_id(), "shoal listening on http://{addr}");
    if let Some(dir) = &demo_dir {
        tracing::info!(files = %dir.display(), "demo chat on http://{}/", browsable(addr));
    }

    let shutdown = shutdown_signal().map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let count = io.clone();
    let inner = WebService::new(demo_dir, Arc::new(move || count.connection_count()));
    shoal::serve_with(listener, io, inner, ServerConfig::default(), shutdown)
        .await
        .map_err(|e| format!("server failed: {e}"))?;
    tracing::info!("shoal stopped");
    Ok(())
}

/// Warns about a demo that cannot work.
fn check_demo_dir(dir: Option<&Path>) {
    let Some(dir) = dir else {
        tracing::warn!("no demo directory found (web/index.html): the demo page is off; pass --demo-dir DIR");
        return;
    };
    if !dir.join("index.html").is_file() {
        tracing::warn!(dir = %dir.display(), "the demo directory has no index.html");
    }
    if !dir.join(web::CLIENT_DIST).join("socket.io.min.js").is_file() {
        tracing::warn!(
            dir = %dir.display(),
            "socket.io-client is not installed there; the demo page cannot connect until `npm ci` is run in it"
        );
    }
}

/// The address to open in a browser: loopback instead of "any address".
fn browsable(addr: SocketAddr) -> SocketAddr {
    let mut a = addr;
    if a.ip().is_unspecified() {
        a.set_ip(if a.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    a
}

/// Signals arriving this soon after the first are the same request, not a second one:
/// `timeout`, some supervisors and a terminal's Ctrl-C signal the process and its group.
const REPEAT_GRACE: Duration = Duration::from_secs(1);

/// Completes on the first SIGINT or SIGTERM. Another one (after [`REPEAT_GRACE`]) exits
/// at once, without waiting for the graceful shutdown to finish.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        let name = tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        };
        let first = Instant::now();
        tracing::info!(signal = name, "shutting down gracefully (signal again to exit at once)");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsable_address() {
        assert_eq!(browsable("0.0.0.0:3000".parse().unwrap()), "127.0.0.1:3000".parse().unwrap());
        assert_eq!(browsable("[::]:80".parse().unwrap()), "[::1]:80".parse().unwrap());
        assert_eq!(browsable("10.1.2.3:3000".parse().unwrap()), "10.1.2.3:3000".parse().unwrap());
    }
}
