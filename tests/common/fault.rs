//! A TCP proxy between the gateway and the broker that injects upstream faults on command: a dead
//! broker (connections cut, port closed), a silent one (requests swallowed), corrupt responses.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Frames are relayed both ways.
    Pass,
    /// The port is closed (connection refused) and live connections were reset: a dead broker.
    Down,
    /// Connections are accepted and requests read, but nothing reaches the broker and nothing comes
    /// back: a hung broker.
    Silent,
    /// Requests reach the broker but its responses are dropped: a broker that dies (or a network
    /// that breaks) after doing the work and before answering.
    Stall,
}

struct State {
    mode: Mutex<Mode>,
    upstream: Mutex<SocketAddr>,
    /// Both sockets of every relayed connection, to cut them all at once.
    live: Mutex<Vec<TcpStream>>,
    /// A request containing these bytes gets a corrupt response (same length and correlation id,
    /// garbage body).
    poison: Mutex<Option<Vec<u8>>>,
    accepted: AtomicU64,
    corrupted: AtomicU64,
    stop: AtomicBool,
}

pub struct FaultProxy {
    pub port: u16,
    state: Arc<State>,
}

impl FaultProxy {
    /// Listens on `port` (pick it with `free_port`) and relays to `upstream`.
    pub fn start(port: u16, upstream: SocketAddr) -> FaultProxy {
        let state = Arc::new(State {
            mode: Mutex::new(Mode::Pass),
            upstream: Mutex::new(upstream),
            live: Mutex::new(Vec::new()),
            poison: Mutex::new(None),
            accepted: AtomicU64::new(0),
            corrupted: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let st = state.clone();
        std::thread::spawn(move || accept_loop(port, st));
        super::wait_for_port(
            SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(5),
        );
        FaultProxy { port, state }
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().expect("mode") = mode;
        if matches!(mode, Mode::Down | Mode::Silent) {
            // A dead or hung broker: whatever was in flight is lost with the connection.
            for s in self.state.live.lock().expect("live").drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }

    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self.state.upstream.lock().expect("upstream") = upstream;
    }

    pub fn poison(&self, marker: &[u8]) {
        *self.state.poison.lock().expect("poison") = Some(marker.to_vec());
    }

    pub fn accepted(&self) -> u64 {
        self.state.accepted.load(Ordering::SeqCst)
    }

    pub fn corrupted(&self) -> u64 {
        self.state.corrupted.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        self.set_mode(Mode::Down);
    }
}

fn mode(st: &State) -> Mode {
    *st.mode.lock().expect("mode")
}

fn accept_loop(port: u16, st: Arc<State>) {
    let mut listener: Option<TcpListener> = None;
    while !st.stop.load(Ordering::SeqCst) {
        if mode(&st) == Mode::Down {
            // Closing the listening socket is what makes connects fail with "refused".
            listener = None;
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        if listener.is_none() {
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => {
                    l.set_nonblocking(true).expect("nonblocking");
                    listener = Some(l);
                }
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            }
        }
        let Some(l) = listener.as_ref() else { continue };
        match l.accept() {
            Ok((client, _)) => {
                st.accepted.fetch_add(1, Ordering::SeqCst);
                client.set_nonblocking(false).expect("blocking");
                let st = st.clone();
                std::thread::spawn(move || relay(client, st));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn relay(client: TcpStream, st: Arc<State>) {
    let silent = mode(&st) == Mode::Silent;
    let upstream = if silent {
        None
    } else {
        let addr = *st.upstream.lock().expect("upstream");
        match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Ok(s) => Some(s),
            Err(_) => return, // the client sees the connection close
        }
    };
    {
        let mut live = st.live.lock().expect("live");
        live.push(client.try_clone().expect("clone"));
        if let Some(u) = &upstream {
            live.push(u.try_clone().expect("clone"));
        }
    }
    let Some(upstream) = upstream else {
        // Read and discard forever: the peer's requests vanish.
        let mut c = client;
        let mut buf = [0u8; 65536];
        while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
        return;
    };
    let corrupt_next = Arc::new(AtomicU64::new(0));
    let (c_read, u_write) = (
        client.try_clone().expect("clone"),
        upstream.try_clone().expect("clone"),
    );
    let st2 = st.clone();
    let flag = corrupt_next.clone();
    std::thread::spawn(move || {
        pump(c_read, u_write, |frame| {
            if !matches!(mode(&st2), Mode::Pass | Mode::Stall) {
                return false;
            }
            let marker = st2.poison.lock().expect("poison").clone();
            if let Some(m) = marker {
                if frame.windows(m.len()).any(|w| w == m.as_slice()) {
                    flag.fetch_add(1, Ordering::SeqCst);
                }
            }
            true
        })
    });
    pump(upstream, client, |frame| {
        if mode(&st) != Mode::Pass {
            return false;
        }
        if corrupt_next.load(Ordering::SeqCst) > 0 {
            corrupt_next.fetch_sub(1, Ordering::SeqCst);
            st.corrupted.fetch_add(1, Ordering::SeqCst);
            // Keep the correlation id so the gateway gets as far as decoding the body.
            for b in frame.iter_mut().skip(4) {
                *b = 0xFF;
            }
        }
        true
    });
}

/// Relays length-prefixed frames from `from` to `to`; `inspect` may edit a frame or return false
/// to drop it. Ends (closing both) when either side closes.
fn pump(mut from: TcpStream, mut to: TcpStream, mut inspect: impl FnMut(&mut Vec<u8>) -> bool) {
    let mut len = [0u8; 4];
    loop {
        if from.read_exact(&mut len).is_err() {
            break;
        }
        let n = i32::from_be_bytes(len);
        if !(0..=128 << 20).contains(&n) {
            break;
        }
        let mut frame = vec![0u8; n as usize];
        if from.read_exact(&mut frame).is_err() {
            break;
        }
        if !inspect(&mut frame) {
            continue;
        }
        if to.write_all(&len).is_err() || to.write_all(&frame).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
