//! The harness against real `redis-server` processes.

use std::time::Duration;

use testkit::{RedisCluster, RedisServer};

#[test]
fn a_server_starts_answers_restarts_and_stops() {
    let redis = RedisServer::start().unwrap();
    assert_eq!(redis.cmd(&["PING"]).unwrap(), "PONG");
    assert_eq!(redis.cmd(&["SET", "k", "v"]).unwrap(), "OK");
    assert_eq!(redis.cmd(&["CONFIG", "GET", "save"]).unwrap(), "save\n");
    assert!(redis.url().ends_with(&format!(":{}/", redis.port())));

    redis.kill();
    assert!(!redis.is_running());
    assert!(redis.cmd(&["PING"]).is_err());

    redis.restart().unwrap();
    assert!(redis.is_running());
    assert_eq!(
        redis.cmd(&["GET", "k"]).unwrap(),
        "",
        "a restarted server is empty"
    );

    let port = redis.port();
    drop(redis);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn a_cluster_of_three_masters_serves_every_slot() {
    let cluster = RedisCluster::start().unwrap();
    assert_eq!(cluster.urls().len(), 3);
    for node in cluster.nodes() {
        assert!(node.port() < 55_535);
        let info = node.cmd(&["CLUSTER", "INFO"]).unwrap();
        assert!(info.contains("cluster_state:ok"), "{info}");
        assert!(info.contains("cluster_size:3"), "{info}");
    }
}

#[test]
fn a_cluster_with_replicas_fails_over_when_a_master_dies() {
    let cluster = RedisCluster::start_with_replicas().unwrap();
    assert_eq!(cluster.urls().len(), 6);
    let slot = cluster.slot("{hot}:1").unwrap();
    let master = cluster.master_of_slot(slot).unwrap();
    let master_port = cluster.nodes()[master].port().to_string();
    assert_eq!(
        cluster.nodes()[master]
            .cmd(&["SET", "{hot}:1", "v"])
            .unwrap(),
        "OK"
    );
    // Replication is asynchronous: the write must reach the replica before the
    // master dies, or the promoted node rightly does not have it.
    assert_eq!(
        cluster.nodes()[master].cmd(&["WAIT", "1", "5000"]).unwrap(),
        "1"
    );

    let failover = cluster
        .fail_over("{hot}:1", Duration::from_secs(20))
        .unwrap();
    assert_eq!((failover.slot, failover.killed), (slot, master));
    assert_ne!(failover.promoted, master);
    assert!(!cluster.nodes()[master].is_running());
    let promoted = &cluster.nodes()[failover.promoted];
    let role = promoted.cmd(&["INFO", "replication"]).unwrap();
    assert!(role.contains("role:master"), "{role}");
    // The promoted node was the dead master's replica and has its data.
    assert_eq!(promoted.cmd(&["GET", "{hot}:1"]).unwrap(), "v");
    assert_eq!(cluster.master_of_slot(slot), Some(failover.promoted));
    // A failover waits out the node timeout (1.5 s) before anything else.
    assert!(
        failover.promotion_time() >= Duration::from_millis(1_500),
        "{:?}",
        failover.promotion_time()
    );
    let table = promoted.cmd(&["CLUSTER", "NODES"]).unwrap();
    assert!(
        table
            .lines()
            .any(|l| l.contains(&format!(":{master_port}@")) && l.contains("fail")),
        "{table}"
    );
}
