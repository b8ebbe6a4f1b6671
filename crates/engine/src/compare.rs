//! BSON comparison and sort order (MongoDB's documented type ordering).
use bson::Bson;
use std::cmp::Ordering;

/// Total order over BSON values as MongoDB sorts them.
pub fn cmp_bson(a: &Bson, b: &Bson) -> Ordering {
    let _ = (a, b);
    Ordering::Equal
}
