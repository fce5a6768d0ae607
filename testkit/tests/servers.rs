//! The harness against real `redis-server` processes.

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
