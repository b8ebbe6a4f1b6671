//! Index keys for shapes: the smallest cell of a quadtree over
//! (longitude, latitude) that encloses a shape's bounding box.
//!
//! Cell ids follow S2's numbering trick on a flat grid: the Morton
//! (Z-order) code of the cell at its level, followed by a 1 bit and then
//! zeros, so a cell's descendants are exactly the ids in
//! `[id - lsb + 1, id + lsb - 1]` (a contiguous range of an ordered index).
use geo::{BoundingRect, Geometry};

/// The finest level: cells of 360/2^20 degrees (about 4 cm of latitude).
pub const MAX_LEVEL: u32 = 20;

fn interleave(x: u64, y: u64) -> u64 {
    let mut out = 0u64;
    for bit in 0..MAX_LEVEL {
        out |= ((x >> bit) & 1) << (2 * bit + 1);
        out |= ((y >> bit) & 1) << (2 * bit);
    }
    out
}

fn grid(value: f64, low: f64, span: f64, level: u32) -> u64 {
    let n = 1u64 << level;
    let t = ((value - low) / span).clamp(0.0, 1.0);
    ((t * n as f64) as u64).min(n - 1)
}

/// The id of the cell at `level` holding (x, y).
pub fn cell_id(x: f64, y: f64, level: u32) -> i64 {
    let level = level.min(MAX_LEVEL);
    let (ix, iy) = (grid(x, -180.0, 360.0, level), grid(y, -90.0, 180.0, level));
    // Place the level's Morton code at the top and mark its end with a 1 bit.
    let morton = interleave(ix, iy) << (2 * (MAX_LEVEL - level));
    let lsb = 1u64 << (2 * (MAX_LEVEL - level));
    ((morton << 1) | lsb) as i64
}

/// The index key of a shape: the smallest cell enclosing its bounding box.
pub fn enclosing_cell(g: &Geometry<f64>) -> i64 {
    let Some(rect) = g.bounding_rect() else { return cell_id(0.0, 0.0, 0) };
    let (min, max) = (rect.min(), rect.max());
    let mut level = MAX_LEVEL;
    while level > 0 && cell_id(min.x, min.y, level) != cell_id(max.x, max.y, level) {
        level -= 1;
    }
    cell_id(min.x, min.y, level)
}

/// The level of a cell id (the position of its marker bit).
pub fn level_of(id: i64) -> u32 {
    MAX_LEVEL - (id as u64).trailing_zeros() / 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{point, polygon};

    #[test]
    fn descendants_fall_in_the_parent_range() {
        let parent = cell_id(10.0, 20.0, 5);
        let child = cell_id(10.0, 20.0, 12);
        let lsb = parent & -parent;
        assert!(parent - lsb < child && child < parent + lsb);
        assert_eq!(level_of(parent), 5);
        assert_eq!(level_of(child), 12);
    }

    #[test]
    fn shapes_get_their_enclosing_cell() {
        let p = enclosing_cell(&Geometry::Point(point!(x: -73.97, y: 40.77)));
        assert_eq!(level_of(p), MAX_LEVEL);
        let big = enclosing_cell(&Geometry::Polygon(polygon![(x: -10.0, y: -10.0), (x: 10.0, y: -10.0), (x: 10.0, y: 10.0)]));
        assert_eq!(level_of(big), 0, "straddles the first split");
    }
}
