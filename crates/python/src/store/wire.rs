//! The client side of OP_MSG, as much of it as the store's client needs: a
//! command body (plus, for inserts, a `documents` sequence) out, one reply
//! document in. The framing is the server's own (`djongo_server::wire`).
use bson::{Document, RawDocumentBuf};
use djongo_server::wire;
use std::io::{self, BufReader, Read, Write};
use std::sync::atomic::{AtomicI32, Ordering};

static NEXT_REQUEST_ID: AtomicI32 = AtomicI32::new(1);

/// What one read of a reply asks the socket for: a point read's or a page
/// of rows' reply in one syscall; a larger one is read in more.
const REPLY_BUFFER: usize = 16 * 1024;

/// A command ready to send.
pub struct Request {
    pub bytes: Vec<u8>,
    pub request_id: i32,
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// Frames `body` (and, when given, a sequence of documents already encoded)
/// as an OP_MSG.
pub fn request(body: &Document, sequence: Option<(&str, &[Vec<u8>])>) -> io::Result<Request> {
    let request_id = NEXT_REQUEST_ID.fetch_add(1, Ordering::Relaxed);
    let encode = |e: bson::error::Error| invalid(format!("cannot encode the command: {e}"));
    let mut bytes = vec![0u8; 16];
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.push(0);
    body.to_writer(&mut bytes).map_err(encode)?;
    if let Some((id, documents)) = sequence {
        bytes.push(1);
        let size_at = bytes.len();
        bytes.extend_from_slice(&[0u8; 4]);
        bytes.extend_from_slice(id.as_bytes());
        bytes.push(0);
        for document in documents {
            bytes.extend_from_slice(document);
        }
        let size = i32::try_from(bytes.len() - size_at).map_err(|_| invalid("the command is too large"))?;
        bytes[size_at..size_at + 4].copy_from_slice(&size.to_le_bytes());
    }
    let length = i32::try_from(bytes.len()).map_err(|_| invalid("the command is too large"))?;
    if bytes.len() > wire::MAX_MESSAGE_SIZE {
        return Err(invalid(format!("the command is {} bytes, more than the {} a message may hold", bytes.len(), wire::MAX_MESSAGE_SIZE)));
    }
    bytes[0..4].copy_from_slice(&length.to_le_bytes());
    bytes[4..8].copy_from_slice(&request_id.to_le_bytes());
    bytes[12..16].copy_from_slice(&wire::OP_MSG.to_le_bytes());
    Ok(Request { bytes, request_id })
}

/// Why a round trip failed.
#[derive(Debug)]
pub enum TripError {
    /// The request could not be written: no server has read it (a write to
    /// a Unix socket whose server is gone fails with EPIPE before any byte
    /// of it is read), so it may be sent again, whatever it is.
    Unsent(io::Error),
    /// The request may have reached the server.
    Failed(io::Error),
}

impl TripError {
    pub fn into_io(self) -> io::Error {
        match self {
            TripError::Unsent(e) | TripError::Failed(e) => e,
        }
    }
}

/// Sends `request` and reads its reply's body.
pub fn round_trip(stream: &mut (impl Read + Write), request: &Request) -> Result<RawDocumentBuf, TripError> {
    stream.write_all(&request.bytes).map_err(TripError::Unsent)?;
    // One recv for the header and, when it fits, the whole reply: read
    // straight from the socket, the header and the body were a syscall each.
    // Nothing follows a reply on this connection until the next request, so
    // the buffer never holds bytes that belong to another message.
    let mut reader = BufReader::with_capacity(REPLY_BUFFER, &mut *stream);
    match read_reply(&mut reader, request.request_id) {
        Ok(Some(body)) => Ok(body),
        Ok(None) => Err(TripError::Failed(io::Error::new(io::ErrorKind::UnexpectedEof, "the store's server closed the connection"))),
        Err(e) => Err(TripError::Failed(e)),
    }
}

/// Reads one reply to `request_id` and returns its body document; `None`
/// when the connection ends before the reply's first byte.
///
/// The reply comes from the store's own server, so the length its header
/// gives is reserved at once and the body read straight into the document's
/// buffer: read as the server reads a request (growing as bytes arrive) and
/// then copied out of the message, a page of 2.4 MB rows spent a quarter of
/// the client's time in those copies (benches/odm/updates.md).
fn read_reply(reader: &mut impl Read, request_id: i32) -> io::Result<Option<RawDocumentBuf>> {
    let mut head = [0u8; 16];
    let mut filled = 0;
    while filled < head.len() {
        match reader.read(&mut head[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let field = |at: usize| i32::from_le_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
    let (length, response_to, op_code) = (field(0), field(8), field(12));
    if op_code != wire::OP_MSG || response_to != request_id {
        return Err(invalid(format!("unexpected reply (opcode {op_code}, to request {response_to})")));
    }
    // flagBits, then one body section: kind 0 and the document.
    let mut start = [0u8; 5];
    let body_and_checksum = usize::try_from(length)
        .ok()
        .filter(|&n| n <= wire::MAX_MESSAGE_SIZE)
        .and_then(|n| n.checked_sub(head.len() + start.len()))
        .ok_or_else(|| invalid(format!("a reply of {length} bytes")))?;
    reader.read_exact(&mut start)?;
    if start[4] != 0 {
        return Err(invalid("a reply without a body section"));
    }
    let flags = u32::from_le_bytes([start[0], start[1], start[2], start[3]]);
    let checksum = if flags & wire::FLAG_CHECKSUM_PRESENT != 0 { 4 } else { 0 };
    let body_len = body_and_checksum.checked_sub(checksum).ok_or_else(|| invalid("a truncated reply"))?;
    // Zeroed (calloc: fresh pages come zeroed) and filled by read_exact,
    // which asks the socket for all that is missing each time; read_to_end
    // into spare capacity starts with 8 KB reads and grows them only while
    // they come back full, which a socket's reads seldom do.
    let mut body = vec![0u8; body_len];
    reader.read_exact(&mut body).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => invalid("a truncated reply"),
        _ => e,
    })?;
    reader.read_exact(&mut [0u8; 4][..checksum])?;
    RawDocumentBuf::from_bytes(body).map(Some).map_err(|e| invalid(format!("a reply that is not BSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn a_request_is_an_op_msg_the_server_reads_back() {
        let docs = [doc! {"a": 1}.to_vec().unwrap(), doc! {"a": 2}.to_vec().unwrap()];
        let request = request(&doc! {"insert": "c", "$db": "d"}, Some(("documents", &docs))).unwrap();
        let mut reader = request.bytes.as_slice();
        let (header, payload) = wire::read_message(&mut reader).unwrap().unwrap();
        let wire::Request::Msg { body, .. } = wire::parse_request(&header, &payload).unwrap() else { panic!("not an OP_MSG") };
        assert_eq!(body.get_array("documents").unwrap().len(), 2);
        assert_eq!(header.request_id, request.request_id);
    }

    /// A socket: what the client writes, and the server's replies to read.
    struct Socket {
        written: Vec<u8>,
        replies: io::Cursor<Vec<u8>>,
    }

    impl Read for Socket {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.replies.read(buf)
        }
    }

    impl Write for Socket {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn replies_smaller_and_larger_than_one_read_come_back_whole() {
        for size in [10, REPLY_BUFFER - 100, REPLY_BUFFER * 3] {
            let request = request(&doc! {"ping": 1, "$db": "d"}, None).unwrap();
            let reply = doc! {"ok": 1.0, "pad": "x".repeat(size)};
            let mut socket = Socket { written: Vec::new(), replies: io::Cursor::new(wire::encode_msg(9, request.request_id, 0, &reply).unwrap()) };
            let read = round_trip(&mut socket, &request).unwrap();
            assert_eq!(read.get_str("pad").unwrap().len(), size);
            assert_eq!(socket.written, request.bytes);
        }
    }

    #[test]
    fn a_reply_to_another_request_is_refused() {
        let reply = wire::encode_msg(9, 41, 0, &doc! {"ok": 1.0}).unwrap();
        assert!(read_reply(&mut reply.as_slice(), 42).is_err());
        assert_eq!(read_reply(&mut reply.as_slice(), 41).unwrap().unwrap().get_f64("ok").unwrap(), 1.0);
    }

    #[test]
    fn a_cut_reply_is_an_error_and_no_reply_is_none() {
        let reply = wire::encode_msg(9, 41, 0, &doc! {"ok": 1.0, "pad": "x".repeat(100)}).unwrap();
        for cut in [3, 16, 20, reply.len() - 1] {
            assert!(read_reply(&mut &reply[..cut], 41).is_err(), "cut at {cut}");
        }
        assert!(read_reply(&mut &reply[..0], 41).unwrap().is_none());
    }

    #[test]
    fn a_reply_with_a_checksum_gives_its_body() {
        let mut reply = wire::encode_msg(9, 41, wire::FLAG_CHECKSUM_PRESENT, &doc! {"ok": 1.0}).unwrap();
        reply.extend_from_slice(&[1, 2, 3, 4]);
        let length = i32::try_from(reply.len()).unwrap();
        reply[0..4].copy_from_slice(&length.to_le_bytes());
        let mut reader = reply.as_slice();
        assert_eq!(read_reply(&mut reader, 41).unwrap().unwrap().get_f64("ok").unwrap(), 1.0);
        assert!(reader.is_empty(), "the checksum is read too");
    }
}
