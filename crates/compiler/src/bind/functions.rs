//! SQL functions of a constant computed when a statement is bound: an
//! `$apply` slot (crates/compiler/src/lower/client.rs) becomes MD5() or a
//! SHA*() hash, CHR(), ORD() or the code-point prefix an ORD() comparison
//! reads, of its argument. SQL NULL in, SQL NULL out.
//!
//! The same functions applied to the rows of the outermost SELECT list (the
//! plan's `post`) run in `djongo.client_functions`; both read a value as
//! its text the same way (`true`/`false` for booleans, bytes as they are).
use super::BindError;
use bson::Bson;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

/// `name(value)`; `text` is the argument's text when it is a parameter (the
/// value as the caller gave it, Python's `str()`).
pub(super) fn apply(name: &str, value: &Bson, text: Option<String>) -> Result<Bson, BindError> {
    if matches!(value, Bson::Null | Bson::Undefined) {
        return Ok(Bson::Null);
    }
    let bytes = || as_bytes(value, text.clone());
    Ok(match name {
        "md5" => Bson::String(hex(&Md5::digest(bytes()))),
        "sha1" => Bson::String(hex(&Sha1::digest(bytes()))),
        "sha224" => Bson::String(hex(&Sha224::digest(bytes()))),
        "sha256" => Bson::String(hex(&Sha256::digest(bytes()))),
        "sha384" => Bson::String(hex(&Sha384::digest(bytes()))),
        "sha512" => Bson::String(hex(&Sha512::digest(bytes()))),
        "chr" => Bson::String(chr(value)?.to_string()),
        "ord" => {
            let text = String::from_utf8_lossy(&bytes()).into_owned();
            Bson::Int32(text.chars().next().map_or(0, |c| c as i32))
        }
        // What ORD() of a string compares as: '' for 0 (an empty string's ORD).
        "code_prefix" => match code_point(value) {
            Some(0) => Bson::String(String::new()),
            _ => Bson::String(chr(value)?.to_string()),
        },
        other => return Err(BindError::Data(format!("unknown function {other:?} in the plan"))),
    })
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The text a function reads of a value.
fn as_bytes(value: &Bson, text: Option<String>) -> Vec<u8> {
    match value {
        Bson::Binary(b) => b.bytes.clone(),
        Bson::Boolean(b) => if *b { "true" } else { "false" }.into(),
        Bson::String(s) => s.clone().into_bytes(),
        _ => match text {
            Some(t) => t.into_bytes(),
            None => scalar_text(value).into_bytes(),
        },
    }
}

/// A constant of the statement as Python's `str()` writes it.
fn scalar_text(value: &Bson) -> String {
    match value {
        Bson::Int32(n) => n.to_string(),
        Bson::Int64(n) => n.to_string(),
        Bson::Double(f) if f.is_nan() => "nan".into(),
        Bson::Double(f) if f.is_infinite() => if *f > 0.0 { "inf" } else { "-inf" }.into(),
        Bson::Double(f) => format!("{f:?}"),
        Bson::Decimal128(d) => d.to_string(),
        Bson::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Python's `int(value)` of a number or numeric text.
fn code_point(value: &Bson) -> Option<i64> {
    match value {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        Bson::Boolean(b) => Some(i64::from(*b)),
        // Truncation toward zero, as int() does; out-of-range floats saturate
        // and are then refused as code points.
        Bson::Double(f) if f.is_finite() => Some(f.trunc() as i64),
        Bson::String(s) => s.trim().replace('_', "").parse().ok(),
        Bson::Decimal128(d) => d.to_string().parse::<i64>().ok(),
        _ => None,
    }
}

fn chr(value: &Bson) -> Result<char, BindError> {
    code_point(value)
        .and_then(|n| u32::try_from(n).ok())
        .and_then(char::from_u32)
        .ok_or_else(|| BindError::Data(format!("CHR(): {} is not a code point", scalar_text(value))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, value: Bson) -> Bson {
        apply(name, &value, None).unwrap()
    }

    #[test]
    fn hashes_are_lowercase_hex_of_the_text() {
        assert_eq!(run("md5", Bson::String("abc".into())), Bson::String("900150983cd24fb0d6963f7d28e17f72".into()));
        assert_eq!(run("sha1", Bson::String("abc".into())), Bson::String("a9993e364706816aba3e25717850c26c9cd0d89d".into()));
        assert_eq!(
            run("sha256", Bson::String("abc".into())),
            Bson::String("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into())
        );
        assert_eq!(run("md5", Bson::Int32(1)), run("md5", Bson::String("1".into())));
        assert_eq!(run("md5", Bson::Boolean(true)), run("md5", Bson::String("true".into())));
        assert_eq!(run("sha512", Bson::Null), Bson::Null);
        // A parameter hashes as the caller's value reads.
        assert_eq!(apply("md5", &Bson::Double(1.5), Some("1.5".into())).unwrap(), run("md5", Bson::String("1.5".into())));
    }

    #[test]
    fn chr_ord_and_code_prefix() {
        assert_eq!(run("chr", Bson::Int32(65)), Bson::String("A".into()));
        assert_eq!(run("chr", Bson::String("233".into())), Bson::String("é".into()));
        assert_eq!(run("ord", Bson::String("éa".into())), Bson::Int32(233));
        assert_eq!(run("ord", Bson::String(String::new())), Bson::Int32(0));
        assert_eq!(run("ord", Bson::Int32(7)), Bson::Int32(55));
        assert_eq!(run("code_prefix", Bson::Int32(0)), Bson::String(String::new()));
        assert_eq!(run("code_prefix", Bson::Int32(97)), Bson::String("a".into()));
        for bad in [Bson::Int32(-1), Bson::Int64(0x11_0000), Bson::String("x".into()), Bson::Int32(0xD800)] {
            assert!(matches!(apply("chr", &bad, None), Err(BindError::Data(m)) if m.starts_with("CHR()")));
        }
        assert!(matches!(apply("nope", &Bson::Int32(1), None), Err(BindError::Data(_))));
    }
}
