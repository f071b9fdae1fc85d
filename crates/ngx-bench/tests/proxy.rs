//! The delay proxy of `ngx-agent bench --db-latency`, over loopback: a
//! round trip through it takes at least the RTT, bytes arrive intact and
//! in order, and pipelined messages are delayed, not serialised.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use ngx_bench::proxy::DelayProxy;

/// A loopback echo server for `connections` connections; each echoes until
/// its client closes.
fn echo_server(connections: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let mut stream = stream.unwrap();
            thread::spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

fn client(proxy: &DelayProxy) -> TcpStream {
    let stream = TcpStream::connect(proxy.addr()).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

#[test]
fn a_round_trip_takes_at_least_the_rtt() {
    let rtt = Duration::from_millis(30);
    let proxy = DelayProxy::start(echo_server(1), rtt).unwrap();
    assert_eq!(proxy.rtt(), rtt);
    let mut conn = client(&proxy);
    for i in 0..5u8 {
        let start = Instant::now();
        conn.write_all(&[i; 16]).unwrap();
        let mut back = [0u8; 16];
        conn.read_exact(&mut back).unwrap();
        let took = start.elapsed();
        assert_eq!(back, [i; 16]);
        assert!(
            took >= rtt,
            "round trip {i} took {took:?}, less than {rtt:?}"
        );
    }
    // Each of the 5 round trips crossed both delay lines once; each
    // forwarding reports how late it was (within the round trip's time).
    let late = proxy.take_lateness();
    assert_eq!(late.len(), 10, "{late:?}");
    assert!(late.windows(2).all(|w| w[0] <= w[1]), "{late:?}");
    assert!(proxy.take_lateness().is_empty(), "samples are taken once");
}

#[test]
fn bytes_arrive_intact_and_in_order() {
    let proxy = DelayProxy::start(echo_server(1), Duration::from_millis(2)).unwrap();
    let mut conn = client(&proxy);
    // 2 MiB in uneven writes, read back concurrently.
    let data: Vec<u8> = (0..2 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut reader = conn.try_clone().unwrap();
    let expected = data.len();
    let read = thread::spawn(move || {
        let mut got = vec![0u8; expected];
        reader.read_exact(&mut got).unwrap();
        got
    });
    for piece in data.chunks(7_919) {
        conn.write_all(piece).unwrap();
    }
    let got = read.join().unwrap();
    assert!(got == data, "the bytes came back changed or reordered");
}

#[test]
fn pipelined_messages_are_delayed_not_serialised() {
    let rtt = Duration::from_millis(40);
    let proxy = DelayProxy::start(echo_server(1), rtt).unwrap();
    let mut conn = client(&proxy);
    let mut reader = conn.try_clone().unwrap();
    let messages = 20u8;
    let start = Instant::now();
    let read = thread::spawn(move || {
        let mut got = Vec::new();
        for _ in 0..messages {
            let mut one = [0u8; 4];
            reader.read_exact(&mut one).unwrap();
            got.push(one);
        }
        got
    });
    for i in 0..messages {
        conn.write_all(&[i; 4]).unwrap();
        thread::sleep(Duration::from_millis(2));
    }
    let got = read.join().unwrap();
    let took = start.elapsed();
    let want: Vec<[u8; 4]> = (0..messages).map(|i| [i; 4]).collect();
    assert_eq!(got, want);
    assert!(took >= rtt, "{took:?}");
    // Serialised, 20 round trips would take 20 RTTs (800 ms); delayed, the
    // last echo arrives one RTT after the last write (about 80 ms).
    assert!(
        took < rtt * 8,
        "{messages} pipelined messages took {took:?}: the proxy serialises"
    );
}

#[test]
fn refuses_an_upstream_off_loopback() {
    let err = DelayProxy::start("10.0.0.1:5432".parse().unwrap(), Duration::ZERO).unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
}
