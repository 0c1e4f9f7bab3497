//! The Redis side of the testkit against a real `redis-server` (run `scripts/deps` first).

use std::time::Duration;

use shoal_testkit::{RedisCluster, RedisServer, RespValue};

#[tokio::test]
async fn server_answers_and_survives_kill_and_restart() {
    let mut redis = RedisServer::start().await;
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{}", redis.port()));
    assert!(redis.cmd(&["SET", "k", "v"]).await.unwrap().is_ok());
    assert_eq!(redis.cmd(&["GET", "k"]).await.unwrap(), RespValue::Bulk(b"v".to_vec()));
    assert_eq!(redis.cmd(&["GET", "missing"]).await.unwrap(), RespValue::Null);
    assert_eq!(redis.cmd(&["INCR", "n"]).await.unwrap(), RespValue::Integer(1));
    assert!(redis.cmd(&["NO-SUCH-COMMAND"]).await.unwrap().is_error());
    let info = redis.cmd(&["CONFIG", "GET", "save"]).await.unwrap();
    assert_eq!(info.strings(), vec!["save".to_owned(), String::new()], "persistence is off");

    redis.kill();
    assert!(!redis.is_running());
    assert!(redis.cmd(&["PING"]).await.is_err(), "a killed server must not answer");

    redis.restart().await;
    assert!(redis.is_running());
    assert_eq!(redis.cmd(&["PING"]).await.unwrap(), RespValue::Simple("PONG".into()));
    assert_eq!(redis.cmd(&["GET", "k"]).await.unwrap(), RespValue::Null, "no persistence across a crash");
}

#[tokio::test]
async fn pubsub_can_be_observed_and_inspected() {
    let redis = RedisServer::start().await;
    let mut sub = redis.connect().await.unwrap();
    let confirm = sub.cmd(&["SUBSCRIBE", "socket.io-request#/#"]).await.unwrap();
    assert_eq!(confirm.strings()[0], "subscribe");
    let mut psub = redis.connect().await.unwrap();
    psub.cmd(&["PSUBSCRIBE", "socket.io#/#*"]).await.unwrap();
    let mut ssub = redis.connect().await.unwrap();
    ssub.cmd(&["SSUBSCRIBE", "socket.io#/#"]).await.unwrap();

    assert_eq!(redis.numsub("socket.io-request#/#").await, 1);
    assert_eq!(redis.numpat().await, 1);
    assert_eq!(redis.shardnumsub("socket.io#/#").await, 1);
    assert_eq!(redis.channels("socket.io*").await, vec!["socket.io-request#/#".to_owned()]);
    assert_eq!(redis.shard_channels("*").await, vec!["socket.io#/#".to_owned()]);

    // binary payloads both ways
    let payload: &[u8] = &[0x93, 0xa6, 0x00, 0xff, b'\r', b'\n'];
    let n = redis.cmd(&[&b"PUBLISH"[..], b"socket.io#/#room#", payload]).await.unwrap();
    assert_eq!(n, RespValue::Integer(1));
    let msg = psub.read_timeout(Duration::from_secs(5)).await.unwrap().expect("a pmessage");
    let parts = msg.as_array().unwrap();
    assert_eq!(parts[0].as_str(), Some("pmessage"));
    assert_eq!(parts[2].as_str(), Some("socket.io#/#room#"));
    assert_eq!(parts[3].as_bytes(), Some(payload));

    redis.cmd(&["SPUBLISH", "socket.io#/#", "{}"]).await.unwrap();
    let msg = ssub.read_timeout(Duration::from_secs(5)).await.unwrap().expect("an smessage");
    assert_eq!(msg.strings(), vec!["smessage".to_owned(), "socket.io#/#".to_owned(), "{}".to_owned()]);

    // kill the pub/sub clients from the server side (an outage of the subscriber connection)
    let killed = redis.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]).await.unwrap();
    assert_eq!(killed, RespValue::Integer(3));
    assert!(sub.read().await.is_err(), "the subscriber connection is closed");
}

#[tokio::test]
async fn pause_makes_the_server_unresponsive_until_resumed() {
    let redis = RedisServer::start().await;
    redis.pause();
    let mut conn = redis.connect().await.unwrap(); // the kernel still accepts
    conn.send(&["PING"]).await.unwrap();
    assert_eq!(conn.read_timeout(Duration::from_millis(300)).await.unwrap(), None);
    redis.resume();
    assert_eq!(conn.read_timeout(Duration::from_secs(5)).await.unwrap(), Some(RespValue::Simple("PONG".into())));
}

#[tokio::test]
async fn three_master_cluster_is_ok() {
    let cluster = RedisCluster::start(3).await;
    assert_eq!(cluster.nodes().len(), 3);
    assert_eq!(cluster.urls().len(), 3);
    for node in cluster.nodes() {
        let info = node.cmd(&["CLUSTER", "INFO"]).await.unwrap();
        let info = info.as_str().unwrap();
        assert!(info.contains("cluster_state:ok"), "{info}");
        assert!(info.contains("cluster_known_nodes:3"), "{info}");
        assert!(info.contains("cluster_slots_assigned:16384"), "{info}");
    }
    // a key lives on exactly one node; the others redirect
    let owner = cluster.node_for_key("k").await;
    assert!(owner.cmd(&["SET", "k", "v"]).await.unwrap().is_ok());
    let moved = cluster.cmd_all(&["GET", "k"]).await;
    let answered = moved.iter().filter(|r| matches!(r, Ok(RespValue::Bulk(_)))).count();
    let redirected =
        moved.iter().filter(|r| r.as_ref().is_ok_and(|v| v.error().is_some_and(|e| e.starts_with("MOVED")))).count();
    assert_eq!((answered, redirected), (1, 2), "{moved:?}");

    // a shard channel's subscription lives on the node owning its slot
    let channel = "socket.io#/#";
    let owner = cluster.node_for_key(channel).await;
    let mut ssub = owner.connect().await.unwrap();
    ssub.cmd(&["SSUBSCRIBE", channel]).await.unwrap();
    assert_eq!(cluster.shardnumsub(channel).await, 1);
    assert_eq!(cluster.shard_channels("socket.io*").await, vec![channel.to_owned()]);
}
