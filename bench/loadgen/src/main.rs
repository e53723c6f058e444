//! A closed-loop HTTP/1.1 load generator for Tollgate's benchmark: N keep-alive connections on
//! loopback, each sending the same POST back to back, for a bounded number of requests and a
//! bounded time. It measures each request's latency (request written → last body byte) and,
//! for streams, its time to first byte (→ first body byte), and prints one JSON object.
//!
//! Standard library only and one blocking thread per connection, so it costs little CPU next to
//! the gateway and the mock it measures, and it builds in seconds.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

const USAGE: &str = "loadgen --url http://127.0.0.1:PORT/v1/chat/completions (--body JSON | --body-file F)
        [--header 'K: V']... [--concurrency 1] [--requests 2000] [--duration 10] [--warmup 100] [--label L]
Closed loop over keep-alive connections; stops after --requests or --duration seconds, whichever first.
Prints one JSON object: rps, latency_ms and ttfb_ms percentiles, errors.";

struct Args {
    host_port: String,
    path: String,
    body: Vec<u8>,
    headers: Vec<String>,
    concurrency: usize,
    requests: i64,
    duration: Duration,
    warmup: usize,
    label: String,
}

fn parse_args() -> Result<Args, String> {
    let mut url = None;
    let mut body = None;
    let mut headers = Vec::new();
    let mut concurrency = 1usize;
    let mut requests = 2000i64;
    let mut duration = 10.0f64;
    let mut warmup = 100usize;
    let mut label = String::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--url" => url = Some(val()?),
            "--body" => body = Some(val()?.into_bytes()),
            "--body-file" => {
                let p = val()?;
                body = Some(std::fs::read(&p).map_err(|e| format!("{p}: {e}"))?)
            }
            "--header" => headers.push(val()?),
            "--concurrency" => concurrency = val()?.parse().map_err(|e| format!("{a}: {e}"))?,
            "--requests" => requests = val()?.parse().map_err(|e| format!("{a}: {e}"))?,
            "--duration" => duration = val()?.parse().map_err(|e| format!("{a}: {e}"))?,
            "--warmup" => warmup = val()?.parse().map_err(|e| format!("{a}: {e}"))?,
            "--label" => label = val()?,
            "-h" | "--help" => return Err(USAGE.into()),
            _ => return Err(format!("unknown argument {a}\n{USAGE}")),
        }
    }
    let url = url.ok_or_else(|| format!("--url is required\n{USAGE}"))?;
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs (loopback) are supported")?;
    let (host_port, path) = match rest.find('/') {
        Some(i) => (rest[..i].to_owned(), rest[i..].to_owned()),
        None => (rest.to_owned(), "/".to_owned()),
    };
    if !(host_port.starts_with("127.") || host_port.starts_with("localhost")) {
        return Err("refusing a non-loopback target".into());
    }
    Ok(Args {
        host_port,
        path,
        body: body.ok_or("--body or --body-file is required")?,
        headers,
        concurrency: concurrency.max(1),
        requests,
        duration: Duration::from_secs_f64(duration),
        warmup,
        label,
    })
}

/// One keep-alive connection with its read buffer.
struct Conn {
    tcp: TcpStream,
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    pos: usize,
}

/// What one request measured.
struct Sample {
    status: u16,
    ttfb: Duration,
    total: Duration,
    keep_alive: bool,
}

impl Conn {
    fn open(host_port: &str) -> std::io::Result<Conn> {
        let tcp = TcpStream::connect(host_port)?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Conn {
            tcp,
            buf: Vec::with_capacity(16 * 1024),
            pos: 0,
        })
    }

    /// Reads more bytes into the buffer; errors at EOF.
    fn fill(&mut self) -> std::io::Result<()> {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + 16 * 1024, 0);
        let n = self.tcp.read(&mut self.buf[len..])?;
        self.buf.truncate(len + n);
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        Ok(())
    }

    fn avail(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Reads one line (without CRLF), consuming it.
    fn line(&mut self) -> std::io::Result<String> {
        loop {
            if let Some(i) = self.avail().windows(2).position(|w| w == b"\r\n") {
                let s = String::from_utf8_lossy(&self.avail()[..i]).into_owned();
                self.pos += i + 2;
                return Ok(s);
            }
            self.fill()?;
        }
    }

    /// Consumes `n` body bytes; `first` is set when the first of them is seen.
    fn skip(&mut self, mut n: usize, first: &mut Option<Instant>) -> std::io::Result<()> {
        while n > 0 {
            if self.avail().is_empty() {
                self.fill()?;
            }
            first.get_or_insert_with(Instant::now);
            let k = n.min(self.avail().len());
            self.pos += k;
            n -= k;
        }
        Ok(())
    }

    fn request(&mut self, req: &[u8]) -> std::io::Result<Sample> {
        let t0 = Instant::now();
        self.tcp.write_all(req)?;
        let status_line = self.line()?;
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
        let mut length = None;
        let mut chunked = false;
        let mut keep_alive = true;
        loop {
            let h = self.line()?;
            if h.is_empty() {
                break;
            }
            let Some((k, v)) = h.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
            match k.as_str() {
                "content-length" => length = v.parse::<usize>().ok(),
                "transfer-encoding" => chunked = v.contains("chunked"),
                "connection" => keep_alive = !v.contains("close"),
                _ => {}
            }
        }
        let mut first = None;
        if chunked {
            loop {
                let size_line = self.line()?;
                let size =
                    usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|_| {
                            std::io::Error::other(format!("bad chunk size {size_line:?}"))
                        })?;
                if size == 0 {
                    // Trailers (none expected) end with an empty line.
                    while !self.line()?.is_empty() {}
                    break;
                }
                self.skip(size, &mut first)?;
                let _ = self.line()?;
            }
        } else if let Some(n) = length {
            self.skip(n, &mut first)?;
        } else {
            return Err(std::io::Error::other("response without length"));
        }
        let end = Instant::now();
        Ok(Sample {
            status,
            ttfb: first.unwrap_or(end) - t0,
            total: end - t0,
            keep_alive,
        })
    }
}

#[derive(Default)]
struct Collected {
    latency: Vec<u32>,
    ttfb: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

fn micros(d: Duration) -> u32 {
    d.as_micros().min(u32::MAX as u128) as u32
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let mut req = format!(
        "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        args.path,
        args.host_port,
        args.body.len()
    )
    .into_bytes();
    for h in &args.headers {
        req.extend_from_slice(h.as_bytes());
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(&args.body);
    let req = Arc::new(req);

    let remaining = Arc::new(AtomicI64::new(args.requests));
    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(args.concurrency + 1));
    let out = Arc::new(Mutex::new(Collected::default()));
    let warm_each = args.warmup.div_ceil(args.concurrency).max(1);
    let mut threads = Vec::new();
    for _ in 0..args.concurrency {
        let (req, remaining, stop, barrier, out) = (
            req.clone(),
            remaining.clone(),
            stop.clone(),
            barrier.clone(),
            out.clone(),
        );
        let host_port = args.host_port.clone();
        threads.push(std::thread::spawn(move || {
            let mut mine = Collected::default();
            let mut conn = Conn::open(&host_port);
            for _ in 0..warm_each {
                if let Ok(c) = conn.as_mut()
                    && c.request(&req).is_err()
                {
                    conn = Conn::open(&host_port);
                }
            }
            barrier.wait();
            while !stop.load(Ordering::Relaxed) && remaining.fetch_sub(1, Ordering::Relaxed) > 0 {
                let c = match conn.as_mut() {
                    Ok(c) => c,
                    Err(e) => {
                        mine.errors += 1;
                        mine.first_error
                            .get_or_insert_with(|| format!("connect: {e}"));
                        std::thread::sleep(Duration::from_millis(10));
                        conn = Conn::open(&host_port);
                        continue;
                    }
                };
                match c.request(&req) {
                    Ok(s) if (200..300).contains(&s.status) => {
                        mine.latency.push(micros(s.total));
                        mine.ttfb.push(micros(s.ttfb));
                        if !s.keep_alive {
                            conn = Conn::open(&host_port);
                        }
                    }
                    Ok(s) => {
                        mine.errors += 1;
                        mine.first_error
                            .get_or_insert_with(|| format!("HTTP {}", s.status));
                        if !s.keep_alive {
                            conn = Conn::open(&host_port);
                        }
                    }
                    Err(e) => {
                        mine.errors += 1;
                        mine.first_error.get_or_insert_with(|| e.to_string());
                        conn = Conn::open(&host_port);
                    }
                }
            }
            if let Ok(mut o) = out.lock() {
                o.latency.extend(mine.latency);
                o.ttfb.extend(mine.ttfb);
                o.errors += mine.errors;
                if o.first_error.is_none() {
                    o.first_error = mine.first_error;
                }
            }
        }));
    }
    barrier.wait();
    let started = Instant::now();
    let deadline = started + args.duration;
    while threads.iter().any(|t| !t.is_finished()) {
        if Instant::now() >= deadline {
            stop.store(true, Ordering::Relaxed);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = started.elapsed();
    for t in threads {
        let _ = t.join();
    }
    let mut o = match Arc::try_unwrap(out) {
        Ok(m) => m.into_inner().unwrap_or_default(),
        Err(_) => Collected::default(),
    };
    let n = o.latency.len();
    println!(
        "{{\"label\":{:?},\"concurrency\":{},\"requests\":{},\"errors\":{},\"first_error\":{},\"elapsed_s\":{:.3},\"rps\":{:.1},\"latency_ms\":{},\"ttfb_ms\":{}}}",
        args.label,
        args.concurrency,
        n,
        o.errors,
        o.first_error
            .map(|e| format!("{e:?}"))
            .unwrap_or_else(|| "null".into()),
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        summary(&mut o.latency),
        summary(&mut o.ttfb),
    );
}

/// Percentiles of microsecond samples, in milliseconds, as a JSON object.
fn summary(v: &mut [u32]) -> String {
    if v.is_empty() {
        return "null".into();
    }
    v.sort_unstable();
    let at =
        |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1] as f64 / 1000.0;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64 / 1000.0;
    format!(
        "{{\"p50\":{:.4},\"p90\":{:.4},\"p99\":{:.4},\"max\":{:.4},\"mean\":{:.4}}}",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0),
        mean
    )
}
