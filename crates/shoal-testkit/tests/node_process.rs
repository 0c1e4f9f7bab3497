//! `NodeProcess` round trips with `tests/js-redis/echo.mjs` (needs `npm ci --prefix tests/js-redis`).

use std::time::Duration;

use serde_json::json;
use shoal_testkit::{DEFAULT_TIMEOUT, NodeProcess};

#[tokio::test]
async fn echo_round_trip() {
    let mut node = NodeProcess::spawn("echo.mjs", &["a", "b c"]);
    let ready = node.wait_for_event("ready").await;
    assert_eq!(ready["args"], json!(["a", "b c"]));

    // binary round-trips through {"$bin": base64}
    let value = json!({"text": "héllo", "n": [1, 2.5, null], "bin": {"$bin": "AAEC/w=="}});
    assert_eq!(node.call(json!({"cmd": "echo", "value": value})).await, value);

    // errors come back as Err
    let err = node.request(json!({"cmd": "fail", "message": "nope"}), DEFAULT_TIMEOUT).await;
    assert_eq!(err, Err("nope".to_owned()));
    let err = node.request(json!({"cmd": "no-such-command"}), DEFAULT_TIMEOUT).await;
    assert!(err.unwrap_err().contains("unknown command"));

    // events printed while waiting for something else stay for later, in order
    node.send(json!({"id": "x", "cmd": "emit", "name": "first", "fields": {"i": 1}}));
    node.send(json!({"id": "y", "cmd": "emit", "name": "second", "fields": {"i": 2}}));
    let second = node.wait_for_event("second").await;
    assert_eq!(second["i"], json!(2));
    let first = node.wait_for_event("first").await;
    assert_eq!(first["i"], json!(1));
    let replies = node.wait_for_n(|v| v.get("reply").is_some(), 2, DEFAULT_TIMEOUT).await;
    assert_eq!(replies.iter().map(|r| r["reply"].clone()).collect::<Vec<_>>(), vec![json!("x"), json!("y")]);
    node.assert_none(|v| v.get("event").is_some(), Duration::from_millis(100)).await;

    // take_matching / next_line
    node.send(json!({"id": 9, "cmd": "emit", "name": "third"}));
    let third = node.wait_for_event("third").await;
    assert_eq!(third, json!({"event": "third"}));
    let reply = node.next_line(DEFAULT_TIMEOUT).await;
    assert_eq!(reply, json!({"reply": 9, "ok": true, "result": null}));
    assert_eq!(node.drain(), 0);

    // the script exits when its stdin closes
    node.close_stdin();
    assert_eq!(node.wait_exit(Duration::from_secs(5)).await, Some(0));
}

#[tokio::test]
#[should_panic(expected = "closed its stdout")]
async fn a_process_that_exits_fails_the_wait_with_its_reason() {
    let mut node = NodeProcess::spawn("echo.mjs", &[]);
    node.wait_for_event("ready").await;
    node.send(json!({"id": 1, "cmd": "exit", "code": 3}));
    node.wait_for_event("never").await;
}

#[tokio::test]
#[should_panic(expected = "nothing matching within")]
async fn waits_are_bounded() {
    let mut node = NodeProcess::spawn("echo.mjs", &[]);
    node.wait_for_event_within("never", Duration::from_millis(200)).await;
}
