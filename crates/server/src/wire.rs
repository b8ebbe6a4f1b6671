//! The MongoDB wire protocol: message framing, OP_MSG (2013) with body and
//! document-sequence sections, and the legacy OP_QUERY (2004) / OP_REPLY (1)
//! pair that drivers still use for the first handshake.
//!
//! Decoding is defensive: every length is checked against the bytes actually
//! present, nesting depth is checked without recursion before any document
//! is built, and malformed input yields a `WireError`, never a panic.
use bson::raw::{RawBsonRef, RawDocument};
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
/// Deepest nesting accepted in any BSON a client sends (MongoDB's
/// `BSONDepth::kDefaultMaxAllowableDepth`). Building a `Document` recurses,
/// so without this bound a small message nested a few thousand levels deep
/// overflows a connection thread's stack and aborts the whole server.
pub const MAX_BSON_DEPTH: usize = 200;
/// Largest single BSON object in a message: 16 MiB for user documents plus
/// MongoDB's 16 KiB of headroom for the command around them.
pub const MAX_BSON_OBJECT_SIZE: usize = 16 * 1024 * 1024 + 16 * 1024;
/// Memory reserved up front for a message body; the rest grows as bytes
/// actually arrive, so a header that lies about its length costs nothing.
const INITIAL_PAYLOAD_CAPACITY: usize = 64 * 1024;
const CHECKSUM_LEN: usize = 4;

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
    /// A well-framed message whose content MongoDB rejects with a specific
    /// error code (invalid BSON, nesting too deep, bad checksum, ...).
    #[error("{code_name} ({code}): {message}")]
    Rejected { code: i32, code_name: &'static str, message: String },
    /// Unknown required OP_MSG flag bits: MongoDB answers and then closes the
    /// connection, since it cannot know how the rest of the stream is framed.
    #[error("OP_MSG contains illegal flags value {0:#034b}")]
    IllegalFlags(u32),
}

impl WireError {
    fn invalid_bson(message: impl Into<String>) -> WireError {
        WireError::Rejected { code: 22, code_name: "InvalidBSON", message: message.into() }
    }

    fn too_deep() -> WireError {
        WireError::Rejected {
            code: 15,
            code_name: "Overflow",
            message: format!("BSONObj exceeds maximum nested object depth ({MAX_BSON_DEPTH})"),
        }
    }

    /// The error reply a client gets for this failure, or `None` when the
    /// framing is lost and the connection is simply closed.
    pub fn reply(&self) -> Option<Document> {
        let (code, code_name) = match self {
            WireError::Malformed(_) => (9, "FailedToParse"),
            WireError::Rejected { code, code_name, .. } => (*code, *code_name),
            WireError::IllegalFlags(_) => (223, "IllegalOpMsgFlag"),
            WireError::Io(_) | WireError::BadLength(_) | WireError::UnsupportedOpCode(_) => return None,
        };
        let errmsg = match self {
            WireError::Rejected { message, .. } => message.clone(),
            other => format!("invalid message: {other}"),
        };
        Some(bson::doc! {"ok": 0.0, "errmsg": errmsg, "code": code, "codeName": code_name})
    }

    /// Whether the server must close the connection after replying.
    pub fn closes_connection(&self) -> bool {
        !matches!(self, WireError::Malformed(_) | WireError::Rejected { .. })
    }
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
    let len = match usize::try_from(header.length) {
        Ok(n) if (HEADER_LEN..=MAX_MESSAGE_SIZE).contains(&n) => n,
        _ => return Err(WireError::BadLength(i64::from(header.length))),
    };
    let want = len - HEADER_LEN;
    let mut payload = Vec::with_capacity(want.min(INITIAL_PAYLOAD_CAPACITY));
    r.take(want as u64).read_to_end(&mut payload)?;
    if payload.len() < want {
        return Err(WireError::Io(io::ErrorKind::UnexpectedEof.into()));
    }
    Ok(Some((header, payload)))
}

/// Checks that `bytes` hold one well-formed BSON document nested at most
/// `MAX_BSON_DEPTH` levels.
pub fn check_bson(bytes: &[u8]) -> Result<(), WireError> {
    match exceeds_depth(bytes, MAX_BSON_DEPTH) {
        Ok(false) => Ok(()),
        Ok(true) => Err(WireError::too_deep()),
        Err(e) => Err(WireError::invalid_bson(format!("invalid BSON: {e}"))),
    }
}

/// Whether the document in `bytes` nests deeper than `limit` levels (the
/// top level is level 1; empty documents and arrays do not count, as in
/// MongoDB). Walks with an explicit stack: the point is to never recurse on
/// client-controlled depth.
pub fn exceeds_depth(bytes: &[u8], limit: usize) -> bson::error::Result<bool> {
    type Values<'a> = Box<dyn Iterator<Item = bson::error::Result<RawBsonRef<'a>>> + 'a>;
    fn children(doc: &RawDocument) -> Values<'_> {
        Box::new(doc.iter().map(|item| item.map(|(_, v)| v)))
    }
    let root = RawDocument::from_bytes(bytes)?;
    let mut stack: Vec<Values<'_>> = vec![children(root)];
    while let Some(top) = stack.last_mut() {
        let Some(item) = top.next() else {
            stack.pop();
            continue;
        };
        let nested: Option<Values<'_>> = match item? {
            RawBsonRef::Document(d) if !d.is_empty() => Some(children(d)),
            RawBsonRef::Array(a) if !a.is_empty() => Some(Box::new(a.into_iter())),
            RawBsonRef::JavaScriptCodeWithScope(c) if !c.scope.is_empty() => Some(children(c.scope)),
            _ => None,
        };
        if let Some(n) = nested {
            if stack.len() >= limit {
                return Ok(true);
            }
            stack.push(n);
        }
    }
    Ok(false)
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
        let len = match usize::try_from(len) {
            Ok(n) if n >= 5 && n <= self.remaining() => n,
            _ => return Err(WireError::invalid_bson(format!("invalid document length {len}"))),
        };
        if len > MAX_BSON_OBJECT_SIZE {
            return Err(WireError::Rejected {
                code: 10334,
                code_name: "BSONObjectTooLarge",
                message: format!("BSONObj size: {len} is invalid. Size must be between 0 and {MAX_BSON_OBJECT_SIZE}"),
            });
        }
        let bytes = self.take(len)?;
        check_bson(bytes)?;
        Document::from_reader(bytes).map_err(|e| WireError::invalid_bson(format!("invalid BSON: {e}")))
    }
}

/// Decodes the payload of a message with the given header.
pub fn parse_request(header: &Header, payload: &[u8]) -> Result<Request, WireError> {
    match header.op_code {
        OP_MSG => parse_msg(header, payload),
        OP_QUERY => parse_query(payload),
        other => Err(WireError::UnsupportedOpCode(other)),
    }
}

/// CRC-32C (Castagnoli) over the whole message but its last four bytes, as
/// OP_MSG's optional checksum is defined.
fn message_checksum(header: &Header, payload_without_checksum: &[u8]) -> u32 {
    const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
    let mut digest = CRC32C.digest();
    for field in [header.length, header.request_id, header.response_to, header.op_code] {
        digest.update(&field.to_le_bytes());
    }
    digest.update(payload_without_checksum);
    digest.finalize()
}

fn parse_msg(header: &Header, payload: &[u8]) -> Result<Request, WireError> {
    let mut c = Cursor { buf: payload, pos: 0 };
    let flags = c.i32()? as u32;
    // Only the low 16 bits may carry required flags we do not know.
    if flags & 0xFFFF & !(FLAG_CHECKSUM_PRESENT | FLAG_MORE_TO_COME) != 0 {
        return Err(WireError::IllegalFlags(flags));
    }
    let end = if flags & FLAG_CHECKSUM_PRESENT != 0 {
        let end = payload
            .len()
            .checked_sub(CHECKSUM_LEN)
            .filter(|&end| end > 4)
            .ok_or_else(|| WireError::Malformed("invalid message size for an OP_MSG containing a checksum".into()))?;
        let sent = u32::from_le_bytes([payload[end], payload[end + 1], payload[end + 2], payload[end + 3]]);
        if sent != message_checksum(header, &payload[..end]) {
            return Err(WireError::Rejected {
                code: 17,
                code_name: "ProtocolError",
                message: "OP_MSG checksum does not match contents".into(),
            });
        }
        end
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
                    return Err(rejected(40430, "Multiple body sections in message"));
                }
                body = Some(c.document()?);
            }
            1 => {
                let size = c.i32()?;
                let size = match usize::try_from(size) {
                    Ok(n) if n >= 4 && n - 4 <= c.remaining() => n,
                    _ => return Err(WireError::Malformed(format!("invalid section size {size}"))),
                };
                let section = c.take(size - 4)?;
                let mut sc = Cursor { buf: section, pos: 0 };
                let id = sc.cstring()?;
                if sequences.iter().any(|(seen, _)| *seen == id) {
                    return Err(rejected(40431, format!("Duplicate document sequence: {id}")));
                }
                let mut docs = Vec::new();
                while sc.remaining() > 0 {
                    docs.push(Bson::Document(sc.document()?));
                }
                sequences.push((id, docs));
            }
            kind => return Err(rejected(40432, format!("Unknown section kind {kind}"))),
        }
    }
    let mut body = body.ok_or_else(|| rejected(40587, "OP_MSG messages must have a body"))?;
    for (id, docs) in sequences {
        if body.contains_key(&id) {
            return Err(rejected(40433, format!("Duplicate field between body and document sequence {id}")));
        }
        body.insert(id, docs);
    }
    Ok(Request::Msg { flags, body })
}

/// A structural OP_MSG error; MongoDB reports these with bare location codes.
fn rejected(code: i32, message: impl Into<String>) -> WireError {
    let code_name = match code {
        40430 => "Location40430",
        40431 => "Location40431",
        40432 => "Location40432",
        40433 => "Location40433",
        _ => "Location40587",
    };
    WireError::Rejected { code, code_name, message: message.into() }
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

/// [`encode_msg`] for a reply already encoded.
pub fn encode_msg_encoded(request_id: i32, response_to: i32, flags: u32, body: &RawDocument) -> Vec<u8> {
    let bytes = body.as_bytes();
    let mut payload = Vec::with_capacity(5 + bytes.len());
    payload.extend_from_slice(&flags.to_le_bytes());
    payload.push(0);
    payload.extend_from_slice(bytes);
    frame(request_id, response_to, OP_MSG, &payload)
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
        OP_MSG => match parse_msg(header, payload)? {
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
