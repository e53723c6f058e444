//! Server-sent events: an incremental decoder for upstream streams and helpers to write them.
//!
//! Upstream bodies arrive in arbitrary byte chunks; [`SseDecoder`] buffers until a blank line
//! ends an event, then yields the event name and its joined `data:` lines.

use bytes::{Bytes, BytesMut};

/// Longest single event accepted from an upstream before the stream is treated as broken.
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: Bytes,
}

#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: BytesMut,
}

#[derive(Debug, PartialEq, Eq)]
pub struct EventTooLarge;

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed bytes; returns the events completed by them.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, EventTooLarge> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some((end, sep_len)) = find_event_end(&self.buf) {
            // Frozen, not copied: a single `data:` line becomes the event's data as a slice.
            let raw = self.buf.split_to(end + sep_len).freeze();
            if let Some(ev) = parse_event(raw.slice(..end)) {
                out.push(ev);
            }
        }
        if self.buf.len() > MAX_EVENT_BYTES {
            return Err(EventTooLarge);
        }
        Ok(out)
    }

    /// As [`push`](Self::push), for a chunk the caller owns: when nothing is buffered, the
    /// events it completes are slices of it rather than copies, and only an unfinished tail is
    /// kept. Upstreams send each event in a chunk of its own, so this is the usual case; the
    /// copy and the buffer's promotion to a shared one were ~1 k instructions an event.
    pub fn push_bytes(&mut self, mut chunk: Bytes) -> Result<Vec<SseEvent>, EventTooLarge> {
        if !self.buf.is_empty() {
            return self.push(&chunk);
        }
        let mut out = Vec::new();
        while let Some((end, sep_len)) = find_event_end(&chunk) {
            let raw = chunk.split_to(end + sep_len);
            if let Some(ev) = parse_event(raw.slice(..end)) {
                out.push(ev);
            }
        }
        if chunk.len() > MAX_EVENT_BYTES {
            return Err(EventTooLarge);
        }
        self.buf.extend_from_slice(&chunk);
        Ok(out)
    }

    /// Whatever is left when the upstream closes: a last event without its blank line.
    pub fn finish(&mut self) -> Option<SseEvent> {
        let raw = std::mem::take(&mut self.buf).freeze();
        let len = trim_trailing_newlines(&raw).len();
        if len == 0 {
            None
        } else {
            parse_event(raw.slice(..len))
        }
    }
}

fn trim_trailing_newlines(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r'] = b {
        b = rest;
    }
    b
}

/// Position of the first blank line: `\n\n`, `\r\n\r\n` or `\r\r`.
fn find_event_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while let Some(pos) = memchr::memchr2(b'\n', b'\r', &buf[i..]) {
        let p = i + pos;
        let rest = &buf[p..];
        if rest.starts_with(b"\r\n\r\n") {
            return Some((p, 4));
        }
        if rest.starts_with(b"\n\n") || rest.starts_with(b"\r\r") {
            return Some((p, 2));
        }
        if rest.starts_with(b"\n\r\n") {
            return Some((p, 3));
        }
        i = p + 1;
    }
    None
}

fn parse_event(raw: Bytes) -> Option<SseEvent> {
    let mut event = None;
    // The first `data:` line as a range of `raw`; later ones joined into `joined`.
    let mut first: Option<std::ops::Range<usize>> = None;
    let mut joined: Option<BytesMut> = None;
    let mut start = 0;
    while start <= raw.len() {
        let end = memchr::memchr(b'\n', &raw[start..]).map_or(raw.len(), |i| start + i);
        let line_end = if end > start && raw[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        let line = &raw[start..line_end];
        let line_start = start;
        start = end + 1;
        if line.is_empty() || line[0] == b':' {
            continue;
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let v = i + 1 + usize::from(line.get(i + 1) == Some(&b' '));
                (&line[..i], line_start + v..line_end)
            }
            None => (line, line_end..line_end),
        };
        match field {
            b"event" => event = Some(String::from_utf8_lossy(&raw[value]).into_owned()),
            b"data" => match (&first, &mut joined) {
                (None, _) => first = Some(value),
                (Some(f), None) => {
                    let mut d = BytesMut::from(&raw[f.clone()]);
                    d.extend_from_slice(b"\n");
                    d.extend_from_slice(&raw[value]);
                    joined = Some(d);
                }
                (Some(_), Some(d)) => {
                    d.extend_from_slice(b"\n");
                    d.extend_from_slice(&raw[value]);
                }
            },
            _ => {}
        }
    }
    if event.is_none() && first.is_none() {
        return None;
    }
    let data = match (joined, first) {
        (Some(d), _) => d.freeze(),
        (None, Some(r)) => raw.slice(r),
        (None, None) => Bytes::new(),
    };
    Some(SseEvent { event, data })
}

/// `data: {json}\n\n` as one buffer.
pub fn data_frame(json: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(json.len() + 8);
    b.extend_from_slice(b"data: ");
    b.extend_from_slice(json);
    b.extend_from_slice(b"\n\n");
    b.freeze()
}

/// `event: name\ndata: {json}\n\n`, the framing Anthropic clients require.
pub fn named_frame(event: &str, json: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(json.len() + event.len() + 16);
    b.extend_from_slice(b"event: ");
    b.extend_from_slice(event.as_bytes());
    b.extend_from_slice(b"\ndata: ");
    b.extend_from_slice(json);
    b.extend_from_slice(b"\n\n");
    b.freeze()
}

pub const DONE_FRAME: &[u8] = b"data: [DONE]\n\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_comments_crlf_and_multiline_data() {
        let mut d = SseDecoder::new();
        let evs = d
            .push(b": keep-alive\r\nevent: message_start\r\ndata:{\"a\":1}\r\n\r\ndata: one\ndata:two\ndata: three\n\nid: 7\n\n")
            .unwrap();
        assert_eq!(
            evs,
            vec![
                SseEvent {
                    event: Some("message_start".into()),
                    data: Bytes::from_static(b"{\"a\":1}"),
                },
                SseEvent {
                    event: None,
                    data: Bytes::from_static(b"one\ntwo\nthree"),
                },
            ]
        );
        assert_eq!(d.push(b"data: [DONE]").unwrap(), vec![]);
        assert_eq!(
            d.finish(),
            Some(SseEvent {
                event: None,
                data: Bytes::from_static(b"[DONE]"),
            })
        );
    }

    #[test]
    fn splits_events_across_arbitrary_chunks() {
        let input = b"event: a\ndata: {\"x\":1}\n\ndata: line1\ndata: line2\r\n\r\n: comment\n\ndata: [DONE]\n\n";
        for split in 1..input.len() {
            let mut d = SseDecoder::new();
            let mut evs = d.push(&input[..split]).unwrap();
            evs.extend(d.push(&input[split..]).unwrap());
            assert_eq!(evs.len(), 3, "split at {split}");
            assert_eq!(evs[0].event.as_deref(), Some("a"));
            assert_eq!(&evs[0].data[..], b"{\"x\":1}");
            assert_eq!(&evs[1].data[..], b"line1\nline2");
            assert_eq!(&evs[2].data[..], b"[DONE]");
        }
    }

    #[test]
    fn owned_chunks_decode_as_copied_ones_at_every_split() {
        let input: &[u8] = b"event: a\ndata: {\"x\":1}\n\ndata: l1\ndata: l2\r\n\r\n: c\n\n\
            data: y\r\rdata: z\n\r\ndata: [DONE]\n\ndata: tail";
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let parts = [&input[..i], &input[i..j], &input[j..]];
                let (mut copied, mut owned) = (SseDecoder::new(), SseDecoder::new());
                let (mut a, mut b) = (Vec::new(), Vec::new());
                for p in parts {
                    a.extend(copied.push(p).unwrap());
                    b.extend(owned.push_bytes(Bytes::copy_from_slice(p)).unwrap());
                }
                assert_eq!(a, b, "split at {i}, {j}");
                assert_eq!(a.len(), 5, "split at {i}, {j}");
                assert_eq!(copied.finish(), owned.finish(), "split at {i}, {j}");
            }
        }
    }

    #[test]
    fn finish_returns_unterminated_last_event() {
        let mut d = SseDecoder::new();
        assert!(d.push(b"data: {}\n").unwrap().is_empty());
        assert_eq!(&d.finish().unwrap().data[..], b"{}");
    }
}
