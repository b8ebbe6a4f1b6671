//! The client side of OP_MSG, as much of it as the store's client needs: a
//! command body (plus, for inserts, a `documents` sequence) out, one reply
//! document in. The framing is the server's own (`djongo_server::wire`).
use bson::{Document, RawDocumentBuf};
use djongo_server::wire::{self, Header};
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
    let (header, payload) = match wire::read_message(&mut reader) {
        Ok(Some(message)) => message,
        Ok(None) => return Err(TripError::Failed(io::Error::new(io::ErrorKind::UnexpectedEof, "the store's server closed the connection"))),
        Err(wire::WireError::Io(e)) => return Err(TripError::Failed(e)),
        Err(e) => return Err(TripError::Failed(invalid(e.to_string()))),
    };
    reply_body(&header, request.request_id, payload).map_err(TripError::Failed)
}

fn reply_body(header: &Header, request_id: i32, payload: Vec<u8>) -> io::Result<RawDocumentBuf> {
    if header.op_code != wire::OP_MSG || header.response_to != request_id {
        return Err(invalid(format!("unexpected reply (opcode {}, to request {})", header.op_code, header.response_to)));
    }
    // flagBits, then one body section: kind 0 and the document.
    if payload.len() < 5 || payload[4] != 0 {
        return Err(invalid("a reply without a body section"));
    }
    let flags = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
    let end = if flags & wire::FLAG_CHECKSUM_PRESENT != 0 { payload.len().saturating_sub(4) } else { payload.len() };
    let body = payload.get(5..end).ok_or_else(|| invalid("a truncated reply"))?;
    RawDocumentBuf::from_bytes(body.to_vec()).map_err(|e| invalid(format!("a reply that is not BSON: {e}")))
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
        let mut reader = reply.as_slice();
        let (header, payload) = wire::read_message(&mut reader).unwrap().unwrap();
        assert!(reply_body(&header, 42, payload.clone()).is_err());
        assert_eq!(reply_body(&header, 41, payload).unwrap().get_f64("ok").unwrap(), 1.0);
    }
}
