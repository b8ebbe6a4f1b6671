//! A cursor batch kept as BSON bytes: the reply documents a find builds
//! from stored bytes (`commands::stored_projection`) go to the client as
//! they are, never decoded into `Document`s and encoded again.
//!
//! A command that answers with one leaves its reply's batch empty
//! (`cursor.firstBatch` or `cursor.nextBatch: []`) and hands the documents
//! to its connection (`ConnInfo::stored_batch`); the reply is then either
//! encoded with the batch in place ([`StoredBatch::encode_with`], the wire
//! server's and the in-process client's way) or given the batch decoded
//! ([`StoredBatch::decode_into`], for callers that want a `Document`).
use bson::raw::CStr;
use bson::{Bson, Document, RawArrayBuf, RawBson, RawDocumentBuf};

/// The documents of a reply's cursor batch.
pub struct StoredBatch {
    /// `firstBatch` or `nextBatch`.
    field: &'static str,
    docs: Vec<RawDocumentBuf>,
}

impl StoredBatch {
    /// A `find`'s (or `aggregate`'s) first batch.
    pub fn first(docs: Vec<RawDocumentBuf>) -> StoredBatch {
        StoredBatch { field: "firstBatch", docs }
    }

    /// A `getMore`'s batch.
    pub fn next(docs: Vec<RawDocumentBuf>) -> StoredBatch {
        StoredBatch { field: "nextBatch", docs }
    }

    /// `reply` with the batch as decoded documents. A reply without the
    /// batch's place (a failed command) is left as it is.
    pub fn decode_into(self, reply: &mut Document) -> bson::error::Result<()> {
        let Some(Bson::Document(cursor)) = reply.get_mut("cursor") else { return Ok(()) };
        let Some(Bson::Array(batch)) = cursor.get_mut(self.field) else { return Ok(()) };
        *batch = self.docs.iter().map(|d| Document::try_from(d.as_ref()).map(Bson::Document)).collect::<bson::error::Result<_>>()?;
        Ok(())
    }

    /// `reply` encoded, with the batch's documents copied in its place (the
    /// same bytes as `decode_into` and encoding the result).
    pub fn encode_with(self, reply: &Document) -> bson::error::Result<RawDocumentBuf> {
        let mut out = RawDocumentBuf::new();
        let mut batch = Some(self);
        for (key, value) in reply {
            let key = <&CStr>::try_from(key.as_str())?;
            match (value, key.as_str()) {
                (Bson::Document(cursor), "cursor") => {
                    let mut encoded = RawDocumentBuf::new();
                    for (ckey, cvalue) in cursor {
                        let ckey = <&CStr>::try_from(ckey.as_str())?;
                        match batch.take_if(|b| b.field == ckey.as_str() && matches!(cvalue, Bson::Array(a) if a.is_empty())) {
                            Some(b) => encoded.append(ckey, b.into_array()),
                            None => encoded.append(ckey, RawBson::try_from(cvalue.clone())?),
                        }
                    }
                    out.append(key, encoded);
                }
                _ => out.append(key, RawBson::try_from(value.clone())?),
            }
        }
        Ok(out)
    }

    fn into_array(self) -> RawArrayBuf {
        let mut array = RawArrayBuf::new();
        for doc in &self.docs {
            array.push(doc.as_ref());
        }
        array
    }
}
