//! Hashed indexes (`{field: "hashed"}`): an entry holds a 64-bit hash of
//! the field's value instead of the value, so equality (and `$in`) can be
//! answered by a point lookup; ranges and sorts cannot use them.
//!
//! The hash is taken over the key encoding (`keyenc`), which is the same
//! for values that compare equal (1, 1.0 and NumberLong(1)), so a query
//! finds every document whose value equals the one it asks for. Hashes
//! differ from mongod's (an MD5 of the BSON element): they only have to be
//! stable within this store.
use crate::error::{CmdResult, CommandError};
use bson::{Bson, Document};
use sha2::{Digest, Sha256};

/// Whether a key pattern's value makes its field hashed.
pub fn is_hashed_direction(v: &Bson) -> bool {
    v.as_str() == Some("hashed")
}

/// The hash standing for `value` in a hashed index.
pub fn hash(value: &Bson) -> Bson {
    let digest = Sha256::digest(crate::keyenc::encode_one(value));
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    Bson::Int64(i64::from_be_bytes(bytes))
}

/// The value a document's hashed field contributes; MongoDB refuses arrays.
pub fn key_value(field: &str, values: &[Bson]) -> CmdResult<Bson> {
    match values {
        [] => Ok(hash(&Bson::Null)),
        [Bson::Array(_)] | [_, _, ..] => Err(CommandError::with_code(
            16766,
            format!("Error: hashed indexes do not currently support array values. Found array at path: {field}"),
        )),
        [v] => Ok(hash(v)),
    }
}

/// Checks a createIndexes entry with a hashed field.
pub fn validate(spec: &Document, key: &Document) -> CmdResult<()> {
    if key.values().filter(|v| is_hashed_direction(v)).count() > 1 {
        return Err(CommandError::with_code(31303, "A maximum of one index field is allowed to be hashed"));
    }
    if crate::catalog::truthy(spec.get("unique")) {
        return Err(CommandError::with_code(16764, "Currently hashed indexes cannot guarantee uniqueness. Use a regular index."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn equal_values_hash_alike() {
        assert_eq!(hash(&Bson::Int32(1)), hash(&Bson::Double(1.0)));
        assert_eq!(hash(&Bson::Int32(1)), hash(&Bson::Int64(1)));
        assert_ne!(hash(&Bson::Int32(1)), hash(&Bson::String("1".into())));
        assert_eq!(hash(&Bson::String("a".into())), hash(&Bson::String("a".into())));
    }

    #[test]
    fn arrays_and_unique_are_refused() {
        assert_eq!(key_value("a", &[Bson::Array(vec![])]).unwrap_err().code, 16766);
        assert_eq!(validate(&doc! {"unique": true}, &doc! {"a": "hashed"}).unwrap_err().code, 16764);
        assert_eq!(validate(&doc! {}, &doc! {"a": "hashed", "b": "hashed"}).unwrap_err().code, 31303);
    }
}
