//! The MongoDB wire protocol: message framing, OP_MSG (2013) with body and
//! document-sequence sections, and the legacy OP_QUERY (2004) / OP_REPLY (1)
//! pair that drivers still use for the first handshake.
//!
//! Decoding is defensive: every length is checked against the bytes actually
//! present, and malformed input yields a `WireError`, never a panic.
use bson::{Bson, Document};
use std::io::{self, Read, Write};
use thiserror::Error;

pub const OP_REPLY: i32 = 1;
pub const OP_QUERY: i32 = 2004;
pub const OP_COMPRESSED: i32 = 2012;
pub const OP_MSG: i32 = 2013;

/// Largest message accepted, as advertised in `hello`.
pub const MAX_MESSAGE_SIZE: usize = 48_000_000;
const HEADER_LEN: usize = 16;

pub const FLAG_CHECKSUM_PRESENT: u32 = 1;
pub const FLAG_MORE_TO_COME: u32 = 1 << 1;
pub const FLAG_EXHAUST_ALLOWED: u32 = 1 << 16;

#[derive(Debug, Error)]
pub enum WireError {
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    #[error("invalid message length {0}")]
    BadLength(i64),
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("unsupported opcode {0}")]
    UnsupportedOpCode(i32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub length: i32,
    pub request_id: i32,
    pub response_to: i32,
    pub op_code: i32,
}

/// A decoded client request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// An OP_MSG; document sequences are folded into the body as arrays.
    Msg { flags: u32, body: Document },
    /// A legacy OP_QUERY; only commands on `<db>.$cmd` are served.
    Query { full_collection_name: String, query: Document },
}

/// Reads one framed message; `Ok(None)` on a clean end of stream.
pub fn read_message(r: &mut impl Read) -> Result<Option<(Header, Vec<u8>)>, WireError> {
    let mut head = [0u8; HEADER_LEN];
    let mut filled = 0;
    while filled < HEADER_LEN {
        match r.read(&mut head[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(WireError::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let header = Header {
        length: le_i32(&head[0..4]),
        request_id: le_i32(&head[4..8]),
        response_to: le_i32(&head[8..12]),
        op_code: le_i32(&head[12..16]),
    };
    let len = header.length;
    if len < HEADER_LEN as i32 || len as usize > MAX_MESSAGE_SIZE {
        return Err(WireError::BadLength(i64::from(len)));
    }
    let mut payload = vec![0u8; len as usize - HEADER_LEN];
    r.read_exact(&mut payload)?;
    Ok(Some((header, payload)))
}

fn le_i32(b: &[u8]) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    i32::from_le_bytes(a)
}

/// A bounds-checked reader over a message payload.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.remaining() {
            return Err(WireError::Malformed(format!("needed {n} bytes, {} left", self.remaining())));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn i32(&mut self) -> Result<i32, WireError> {
        Ok(le_i32(self.take(4)?))
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    fn cstring(&mut self) -> Result<String, WireError> {
        let rest = &self.buf[self.pos..];
        let end = rest.iter().position(|&b| b == 0).ok_or_else(|| WireError::Malformed("unterminated string".into()))?;
        let s = std::str::from_utf8(&rest[..end]).map_err(|_| WireError::Malformed("string is not UTF-8".into()))?;
        self.pos += end + 1;
        Ok(s.to_string())
    }
    fn document(&mut self) -> Result<Document, WireError> {
        if self.remaining() < 5 {
            return Err(WireError::Malformed("truncated document".into()));
        }
        let len = le_i32(&self.buf[self.pos..]);
        if len < 5 || len as usize > self.remaining() {
            return Err(WireError::Malformed(format!("invalid document length {len}")));
        }
        let bytes = self.take(len as usize)?;
        Document::from_reader(bytes).map_err(|e| WireError::Malformed(format!("invalid BSON: {e}")))
    }
}

/// Decodes the payload of a message with the given header.
pub fn parse_request(header: &Header, payload: &[u8]) -> Result<Request, WireError> {
    match header.op_code {
        OP_MSG => parse_msg(payload),
        OP_QUERY => parse_query(payload),
        other => Err(WireError::UnsupportedOpCode(other)),
    }
}

fn parse_msg(payload: &[u8]) -> Result<Request, WireError> {
    let mut c = Cursor { buf: payload, pos: 0 };
    let flags = c.i32()? as u32;
    // Only the low 16 bits may carry required flags we do not know.
    if flags & 0xFFFF & !(FLAG_CHECKSUM_PRESENT | FLAG_MORE_TO_COME) != 0 {
        return Err(WireError::Malformed(format!("unknown required OP_MSG flags {flags:#x}")));
    }
    let end = if flags & FLAG_CHECKSUM_PRESENT != 0 {
        // The CRC-32C trailer is not verified: TCP already checksums, and
        // drivers do not send it by default.
        payload.len().checked_sub(4).ok_or_else(|| WireError::Malformed("missing checksum".into()))?
    } else {
        payload.len()
    };
    let mut c = Cursor { buf: &payload[..end], pos: 4 };
    let mut body: Option<Document> = None;
    let mut sequences: Vec<(String, Vec<Bson>)> = Vec::new();
    while c.remaining() > 0 {
        match c.u8()? {
            0 => {
                if body.is_some() {
                    return Err(WireError::Malformed("more than one body section".into()));
                }
                body = Some(c.document()?);
            }
            1 => {
                let size = c.i32()?;
                if size < 4 || (size as usize - 4) > c.remaining() {
                    return Err(WireError::Malformed(format!("invalid section size {size}")));
                }
                let section = c.take(size as usize - 4)?;
                let mut sc = Cursor { buf: section, pos: 0 };
                let id = sc.cstring()?;
                let mut docs = Vec::new();
                while sc.remaining() > 0 {
                    docs.push(Bson::Document(sc.document()?));
                }
                sequences.push((id, docs));
            }
            kind => return Err(WireError::Malformed(format!("unknown section kind {kind}"))),
        }
    }
    let mut body = body.ok_or_else(|| WireError::Malformed("OP_MSG without a body section".into()))?;
    for (id, docs) in sequences {
        match body.get_mut(&id) {
            Some(Bson::Array(existing)) => existing.extend(docs),
            _ => {
                body.insert(id, docs);
            }
        }
    }
    Ok(Request::Msg { flags, body })
}

fn parse_query(payload: &[u8]) -> Result<Request, WireError> {
    let mut c = Cursor { buf: payload, pos: 0 };
    let _flags = c.i32()?;
    let full_collection_name = c.cstring()?;
    let _skip = c.i32()?;
    let _return = c.i32()?;
    let mut query = c.document()?;
    // Old drivers wrap the command as {$query: {...}, $readPreference: ...}.
    if let Some(Bson::Document(inner)) = query.get("$query").or_else(|| query.get("query")) {
        if query.keys().next().map(|k| k == "$query" || k == "query").unwrap_or(false) {
            query = inner.clone();
        }
    }
    Ok(Request::Query { full_collection_name, query })
}

fn frame(request_id: i32, response_to: i32, op_code: i32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&((HEADER_LEN + payload.len()) as i32).to_le_bytes());
    out.extend_from_slice(&request_id.to_le_bytes());
    out.extend_from_slice(&response_to.to_le_bytes());
    out.extend_from_slice(&op_code.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Encodes an OP_MSG with a single body section.
pub fn encode_msg(request_id: i32, response_to: i32, flags: u32, body: &Document) -> Result<Vec<u8>, WireError> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&flags.to_le_bytes());
    payload.push(0);
    body.to_writer(&mut payload).map_err(|e| WireError::Malformed(format!("cannot encode reply: {e}")))?;
    Ok(frame(request_id, response_to, OP_MSG, &payload))
}

/// Encodes an OP_REPLY carrying one document (the answer to an OP_QUERY command).
pub fn encode_reply(request_id: i32, response_to: i32, doc: &Document) -> Result<Vec<u8>, WireError> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&0i32.to_le_bytes()); // responseFlags
    payload.extend_from_slice(&0i64.to_le_bytes()); // cursorID
    payload.extend_from_slice(&0i32.to_le_bytes()); // startingFrom
    payload.extend_from_slice(&1i32.to_le_bytes()); // numberReturned
    doc.to_writer(&mut payload).map_err(|e| WireError::Malformed(format!("cannot encode reply: {e}")))?;
    Ok(frame(request_id, response_to, OP_REPLY, &payload))
}

/// Encodes an OP_QUERY (used by tests and tools acting as a client).
pub fn encode_query(request_id: i32, collection: &str, query: &Document) -> Result<Vec<u8>, WireError> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&0i32.to_le_bytes());
    payload.extend_from_slice(collection.as_bytes());
    payload.push(0);
    payload.extend_from_slice(&0i32.to_le_bytes());
    payload.extend_from_slice(&(-1i32).to_le_bytes());
    query.to_writer(&mut payload).map_err(|e| WireError::Malformed(format!("cannot encode query: {e}")))?;
    Ok(frame(request_id, 0, OP_QUERY, &payload))
}

/// Encodes an OP_MSG with a body and one document sequence (client side).
pub fn encode_msg_with_sequence(request_id: i32, body: &Document, id: &str, docs: &[Document]) -> Result<Vec<u8>, WireError> {
    let enc = |e: bson::error::Error| WireError::Malformed(format!("cannot encode: {e}"));
    let mut payload = Vec::new();
    payload.extend_from_slice(&0u32.to_le_bytes());
    payload.push(0);
    body.to_writer(&mut payload).map_err(enc)?;
    let mut section = Vec::new();
    section.extend_from_slice(id.as_bytes());
    section.push(0);
    for d in docs {
        d.to_writer(&mut section).map_err(enc)?;
    }
    payload.push(1);
    payload.extend_from_slice(&((section.len() + 4) as i32).to_le_bytes());
    payload.extend_from_slice(&section);
    Ok(frame(request_id, 0, OP_MSG, &payload))
}

/// Decodes a server reply (OP_MSG or OP_REPLY) into its document (client side).
pub fn parse_reply(header: &Header, payload: &[u8]) -> Result<Document, WireError> {
    match header.op_code {
        OP_MSG => match parse_msg(payload)? {
            Request::Msg { body, .. } => Ok(body),
            Request::Query { .. } => Err(WireError::Malformed("unexpected reply".into())),
        },
        OP_REPLY => {
            let mut c = Cursor { buf: payload, pos: 20 };
            if payload.len() < 20 {
                return Err(WireError::Malformed("short OP_REPLY".into()));
            }
            c.document()
        }
        other => Err(WireError::UnsupportedOpCode(other)),
    }
}

/// Writes a whole message.
pub fn write_message(w: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    w.write_all(bytes)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn round_trip(bytes: &[u8]) -> Result<Request, WireError> {
        let mut r = bytes;
        let (h, p) = read_message(&mut r)?.ok_or_else(|| WireError::Malformed("eof".into()))?;
        parse_request(&h, &p)
    }

    #[test]
    fn msg_with_sequence_folds_into_body() {
        let bytes = encode_msg_with_sequence(7, &doc! {"insert": "c", "$db": "d"}, "documents", &[doc! {"a": 1}, doc! {"a": 2}]).unwrap();
        let Request::Msg { body, .. } = round_trip(&bytes).unwrap() else { panic!() };
        assert_eq!(body.get_array("documents").unwrap().len(), 2);
    }

    #[test]
    fn query_unwraps_dollar_query() {
        let bytes = encode_query(1, "admin.$cmd", &doc! {"$query": {"isMaster": 1}, "$readPreference": {"mode": "primary"}}).unwrap();
        let Request::Query { full_collection_name, query } = round_trip(&bytes).unwrap() else { panic!() };
        assert_eq!(full_collection_name, "admin.$cmd");
        assert_eq!(query, doc! {"isMaster": 1});
    }

    #[test]
    fn reply_round_trips() {
        let bytes = encode_reply(1, 2, &doc! {"ok": 1.0}).unwrap();
        let mut r = bytes.as_slice();
        let (h, p) = read_message(&mut r).unwrap().unwrap();
        assert_eq!(h.response_to, 2);
        assert_eq!(parse_reply(&h, &p).unwrap(), doc! {"ok": 1.0});
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        // Every truncation and a sweep of corruptions of a valid message.
        let good = encode_msg_with_sequence(7, &doc! {"insert": "c"}, "documents", &[doc! {"a": 1}]).unwrap();
        for cut in 0..good.len() {
            let _ = round_trip(&good[..cut]);
        }
        for i in 16..good.len() {
            for v in [0u8, 1, 0x7F, 0xFF] {
                let mut bad = good.clone();
                bad[i] = v;
                let _ = round_trip(&bad);
            }
        }
        assert!(matches!(round_trip(&[0xFF, 0xFF, 0xFF, 0x7F, 0, 0, 0, 0, 0, 0, 0, 0, 0xDD, 7, 0, 0]), Err(WireError::BadLength(_))));
    }
}

#[cfg(test)]
mod fuzz {
    //! Property test standing in for a fuzz target: arbitrary bytes, and
    //! valid messages with arbitrary corruption, never panic the decoder.
    use super::*;
    use proptest::prelude::*;

    fn decode(bytes: &[u8]) {
        let mut r = bytes;
        if let Ok(Some((h, p))) = read_message(&mut r) {
            let _ = parse_request(&h, &p);
            let _ = parse_reply(&h, &p);
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            decode(&bytes);
        }

        #[test]
        fn corrupted_messages(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<usize>()) {
            let body = bson::doc! {"insert": "c", "$db": "d", "x": [1, "two", {"three": 3.0}]};
            let mut msg = encode_msg_with_sequence(1, &body, "documents", &[bson::doc! {"a": 1}]).unwrap_or_default();
            for (pos, val) in edits {
                let i = pos % msg.len();
                msg[i] = val;
            }
            let cut = cut % (msg.len() + 1);
            decode(&msg[..cut]);
            decode(&msg);
        }
    }
}
