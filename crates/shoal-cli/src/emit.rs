//! `shoal emit`: publishes on Redis what a server of the cluster would (with
//! `shoal-emitter`), for the servers to deliver: events to clients, room joins and leaves,
//! disconnections, server-side events.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;
use shoal_emitter::{
    Args as EventArgs, Emitter, EmitterConfig, EmitterMode, RESERVED_EVENTS, RESERVED_SERVER_SIDE_EVENTS,
};

use crate::config::{RedisModeName, SubscriptionModeName, check_redis, redact_url};

/// Flags of `shoal emit`.
#[derive(Debug, clap::Args)]
pub(crate) struct EmitArgs {
    /// Redis URL (`redis://[user:pass@]host:6379[/db]`, `rediss://…`,
    /// `redis-cluster://host:port?node=host:port`); also read from SHOAL_REDIS_URL, which
    /// keeps a password out of the process list.
    #[arg(long, value_name = "URL", env = "SHOAL_REDIS_URL", hide_env_values = true)]
    pub(crate) redis: String,

    /// The servers' Redis adapter: `classic` (createAdapter, what Node's
    /// @socket.io/redis-emitter speaks) or `sharded` (createShardedAdapter).
    #[arg(long, value_name = "MODE", value_enum, default_value_t = RedisModeName::Classic)]
    pub(crate) redis_mode: RedisModeName,

    /// Sharded mode only: the servers' subscription mode (Node's `subscriptionMode`).
    /// [default: dynamic]
    #[arg(long, value_name = "MODE", value_enum)]
    pub(crate) redis_subscription_mode: Option<SubscriptionModeName>,

    /// Channel prefix of the servers' adapter (Node's `key` / `channelPrefix`).
    #[arg(long, visible_alias = "redis-key", value_name = "KEY", default_value = "socket.io")]
    pub(crate) key: String,

    /// Namespace (a missing leading `/` is added).
    #[arg(long, value_name = "NSP", default_value = "/")]
    pub(crate) nsp: String,

    /// Only the sockets in ROOM (repeat: in any of them; a socket id targets that socket).
    #[arg(long = "to", value_name = "ROOM")]
    pub(crate) to: Vec<String>,

    /// Not the sockets in ROOM (repeatable).
    #[arg(long, value_name = "ROOM")]
    pub(crate) except: Vec<String>,

    /// The event may be dropped for clients that cannot take it right now.
    #[arg(long)]
    pub(crate) volatile: bool,

    /// Set the compress flag (WebSocket permessage-deflate, where negotiated).
    #[arg(long)]
    pub(crate) compress: bool,

    /// Instead of an event: the targeted sockets join ROOM (repeatable).
    #[arg(long, value_name = "ROOM", group = "operation")]
    pub(crate) join: Vec<String>,

    /// Instead of an event: the targeted sockets leave ROOM (repeatable).
    #[arg(long, value_name = "ROOM", group = "operation")]
    pub(crate) leave: Vec<String>,

    /// Instead of an event: disconnect the targeted sockets from the namespace.
    #[arg(long, group = "operation")]
    pub(crate) disconnect: bool,

    /// With --disconnect: close their whole connection (every namespace).
    #[arg(long)]
    pub(crate) close: bool,

    /// Send EVENT to the servers' own listeners (serverSideEmit), not to clients.
    #[arg(long, group = "operation", conflicts_with_all = ["to", "except", "volatile", "compress"])]
    pub(crate) server_side: bool,

    /// Give up after this long (connecting and publishing), in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub(crate) timeout: u64,

    /// The event name.
    #[arg(
        value_name = "EVENT",
        required_unless_present_any = ["join", "leave", "disconnect"],
        conflicts_with_all = ["join", "leave", "disconnect"]
    )]
    pub(crate) event: Option<String>,

    /// The event's arguments, each one JSON value: `'"text"'`, `42`, `'{"a":[1,2]}'`.
    #[arg(value_name = "JSON_ARG", requires = "event")]
    pub(crate) args: Vec<String>,
}

/// What to publish.
#[derive(Debug, PartialEq)]
enum Operation {
    Emit { event: String, args: Vec<Value> },
    ServerSide { event: String, args: Vec<Value> },
    Join(Vec<String>),
    Leave(Vec<String>),
    Disconnect { close: bool },
}

/// Runs `shoal emit`; the process's exit status.
pub(crate) fn run(args: &EmitArgs) -> ExitCode {
    let prepared = config(args).and_then(|config| Ok((config, operation(args)?)));
    let (config, op) = match prepared {
        Ok(p) => p,
        Err(e) => {
            eprintln!("shoal emit: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("shoal emit: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let timeout = Duration::from_millis(args.timeout);
    let outcome = runtime.block_on(async {
        tokio::time::timeout(timeout, publish(args, config, op))
            .await
            .unwrap_or_else(|_| Err(format!("not published within {} ms", args.timeout)))
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shoal emit: {e}");
            ExitCode::FAILURE
        }
    }
}

fn config(args: &EmitArgs) -> Result<EmitterConfig, String> {
    if args.redis_subscription_mode.is_some() && args.redis_mode != RedisModeName::Sharded {
        return Err("--redis-subscription-mode only applies to --redis-mode sharded".into());
    }
    check_redis(&args.redis, args.redis_mode, &args.key, args.redis_subscription_mode).map_err(|e| e.to_string())?;
    let mode = match args.redis_mode {
        RedisModeName::Classic => EmitterMode::Classic,
        RedisModeName::Sharded => {
            EmitterMode::Sharded { subscription: args.redis_subscription_mode.unwrap_or_default().mode() }
        }
    };
    Ok(EmitterConfig::default().key(args.key.as_str()).mode(mode))
}

/// The operation the flags ask for, arguments parsed and event names checked.
fn operation(args: &EmitArgs) -> Result<Operation, String> {
    // (clap's `requires` is satisfied by a flag's default value: checked here)
    if args.close && !args.disconnect {
        return Err("--close only goes with --disconnect".into());
    }
    if !args.join.is_empty() {
        return Ok(Operation::Join(args.join.clone()));
    }
    if !args.leave.is_empty() {
        return Ok(Operation::Leave(args.leave.clone()));
    }
    if args.disconnect {
        return Ok(Operation::Disconnect { close: args.close });
    }
    // clap requires the event in every other case
    let event = args.event.clone().ok_or("an EVENT is required")?;
    let reserved = RESERVED_EVENTS.contains(&event.as_str())
        || (args.server_side && RESERVED_SERVER_SIDE_EVENTS.contains(&event.as_str()));
    if reserved {
        return Err(format!("\"{event}\" is a reserved event name"));
    }
    let values = args
        .args
        .iter()
        .enumerate()
        .map(|(i, text)| {
            serde_json::from_str::<Value>(text)
                .map_err(|e| format!("argument {} ({text}) is not JSON: {e}; a string needs quotes: '\"text\"'", i + 1))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(if args.server_side {
        Operation::ServerSide { event, args: values }
    } else {
        Operation::Emit { event, args: values }
    })
}

async fn publish(args: &EmitArgs, config: EmitterConfig, op: Operation) -> Result<(), String> {
    let emitter = Emitter::connect(&args.redis, config)
        .await
        .map_err(|e| format!("cannot connect to Redis at {}: {e}", redact_url(&args.redis)))?;
    let mut target = emitter.clone().of(&args.nsp);
    for room in &args.to {
        target = target.to(room.as_str());
    }
    for room in &args.except {
        target = target.except(room.as_str());
    }
    if args.volatile {
        target = target.volatile();
    }
    if args.compress {
        target = target.compress(true);
    }
    let done = match op {
        Operation::Emit { event, args } => target.emit_args(&event, EventArgs::from_values(args)).await,
        Operation::ServerSide { event, args } => {
            target.server_side_emit_args(&event, EventArgs::from_values(args)).await
        }
        Operation::Join(rooms) => target.sockets_join(rooms).await,
        Operation::Leave(rooms) => target.sockets_leave(rooms).await,
        Operation::Disconnect { close } => target.disconnect_sockets(close).await,
    };
    emitter.close().await;
    done.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use serde_json::json;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(argv: &[&str]) -> Result<EmitArgs, clap::Error> {
        let mut full = vec!["shoal", "emit", "--redis", "redis://127.0.0.1:6379"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full)?.command {
            Command::Emit(a) => Ok(a),
            other => panic!("not emit: {other:?}"),
        }
    }

    #[test]
    fn events_and_arguments() {
        let a = parse(&["--to", "r1", "--to", "r2", "--except", "x", "--volatile", "ev", "\"s\"", "-5", "{\"a\":1}"])
            .unwrap();
        let op = operation(&a).unwrap();
        assert_eq!(a.nsp, "/");
        assert_eq!(config(&a).unwrap(), EmitterConfig::default());
        assert_eq!((a.to, a.except, a.volatile), (vec!["r1".to_owned(), "r2".into()], vec!["x".to_owned()], true));
        assert_eq!(op, Operation::Emit { event: "ev".into(), args: vec![json!("s"), json!(-5), json!({"a": 1})] });

        let a = parse(&["--server-side", "--nsp", "chat", "hello", "[1]"]).unwrap();
        assert_eq!(operation(&a).unwrap(), Operation::ServerSide { event: "hello".into(), args: vec![json!([1])] });
    }

    #[test]
    fn operations() {
        let a = parse(&["--to", "r", "--join", "a", "--join", "b"]).unwrap();
        assert_eq!(operation(&a).unwrap(), Operation::Join(vec!["a".into(), "b".into()]));
        let a = parse(&["--leave", "a"]).unwrap();
        assert_eq!(operation(&a).unwrap(), Operation::Leave(vec!["a".into()]));
        let a = parse(&["--disconnect", "--close"]).unwrap();
        assert_eq!(operation(&a).unwrap(), Operation::Disconnect { close: true });
    }

    #[test]
    fn modes_and_keys() {
        let a = parse(&["--redis-mode", "sharded", "--redis-subscription-mode", "static", "--redis-key", "k", "e"])
            .unwrap();
        assert_eq!(
            config(&a).unwrap(),
            EmitterConfig::default()
                .key("k")
                .mode(EmitterMode::Sharded { subscription: shoal_redis::SubscriptionMode::Static })
        );
        let a = parse(&["--redis-mode", "sharded", "e"]).unwrap();
        assert_eq!(
            config(&a).unwrap().mode,
            EmitterMode::Sharded { subscription: shoal_redis::SubscriptionMode::Dynamic }
        );
        let a = parse(&["--redis-subscription-mode", "static", "e"]).unwrap();
        assert!(config(&a).unwrap_err().contains("only applies to --redis-mode sharded"));
    }

    #[test]
    fn usage_errors() {
        for argv in [
            &[][..],                               // nothing to do
            &["--join", "a", "ev"],                // an event and an operation
            &["--join", "a", "--leave", "b"],      // two operations
            &["--server-side", "--to", "r", "ev"], // server-side events have no target
            &["--disconnect", "--server-side", "ev"],
            &["--redis-mode", "streams", "ev"],
        ] {
            assert!(parse(argv).is_err(), "{argv:?} should be refused");
        }
    }

    #[test]
    fn bad_arguments_are_explained() {
        assert_eq!(operation(&parse(&["--close", "ev"]).unwrap()).unwrap_err(), "--close only goes with --disconnect");
        let a = parse(&["ev", "text"]).unwrap();
        let e = operation(&a).unwrap_err();
        assert!(e.starts_with("argument 1 (text) is not JSON") && e.contains("'\"text\"'"), "{e}");
        let a = parse(&["disconnect"]).unwrap();
        assert_eq!(operation(&a).unwrap_err(), "\"disconnect\" is a reserved event name");
        let a = parse(&["--server-side", "connection"]).unwrap();
        assert_eq!(operation(&a).unwrap_err(), "\"connection\" is a reserved event name");
        // only server-side: a client may receive "connection"
        assert!(operation(&parse(&["connection"]).unwrap()).is_ok());
    }
}
