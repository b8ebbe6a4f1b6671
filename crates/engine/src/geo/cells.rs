//! Index keys for shapes: the smallest cell of a quadtree over
//! (longitude, latitude) that encloses a shape's bounding box.
//!
//! Cell ids follow S2's numbering trick on a flat grid: the Morton
//! (Z-order) code of the cell at its level, followed by a 1 bit and then
//! zeros, so a cell's descendants are exactly the ids in
//! `[id - lsb + 1, id + lsb - 1]` (a contiguous range of an ordered index).
use geo::Geometry;

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
    // The level's Morton code at the top, its end marked with a 1 bit.
    cell_of_grid(grid(x, -180.0, 360.0, level), grid(y, -90.0, 180.0, level), level)
}

/// The index key of a shape: the smallest cell enclosing its bounding box
/// on the sphere (great-circle edges bulge toward a pole; a shape across
/// the antimeridian spans every longitude).
pub fn enclosing_cell(g: &Geometry<f64>) -> i64 {
    let Some(rect) = super::sphere::bounding_box(g, false) else { return cell_id(0.0, 0.0, 0) };
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

/// A query covers at most about this many cells at its covering level.
const MAX_COVERING_CELLS: u64 = 16;

/// The id ranges (inclusive) an index scan reads to find every shape whose
/// enclosing cell meets `rect`, `None` for "the whole index": the cells of
/// one level that cover `rect` with their descendants (one range each),
/// and each of their ancestors (one id each). Sorted and merged.
pub fn covering_ranges(rect: Option<geo::Rect<f64>>) -> Vec<(i64, i64)> {
    let Some(rect) = rect else { return vec![(i64::MIN, i64::MAX)] };
    let (min, max) = (rect.min(), rect.max());
    let mut level = MAX_LEVEL;
    let span = |level: u32| {
        let nx = grid(max.x, -180.0, 360.0, level) - grid(min.x, -180.0, 360.0, level) + 1;
        let ny = grid(max.y, -90.0, 180.0, level) - grid(min.y, -90.0, 180.0, level) + 1;
        nx * ny
    };
    while level > 0 && span(level) > MAX_COVERING_CELLS {
        level -= 1;
    }
    let n = 1u64 << level;
    let (x0, x1) = (grid(min.x, -180.0, 360.0, level), grid(max.x, -180.0, 360.0, level));
    let (y0, y1) = (grid(min.y, -90.0, 180.0, level), grid(max.y, -90.0, 180.0, level));
    let mut ranges = Vec::new();
    for ix in x0..=x1.min(n - 1) {
        for iy in y0..=y1.min(n - 1) {
            let id = cell_of_grid(ix, iy, level);
            let lsb = id & id.wrapping_neg();
            ranges.push((id - (lsb - 1), id + (lsb - 1)));
            // Shapes stored at a coarser level: the cell's ancestors.
            for up in 0..level {
                let a = ancestor(id, up);
                ranges.push((a, a));
            }
        }
    }
    ranges.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match merged.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    merged
}

fn cell_of_grid(ix: u64, iy: u64, level: u32) -> i64 {
    let morton = interleave(ix, iy) << (2 * (MAX_LEVEL - level));
    let lsb = 1u64 << (2 * (MAX_LEVEL - level));
    ((morton << 1) | lsb) as i64
}

/// The ancestor of `id` at `level` (coarser than its own).
fn ancestor(id: i64, level: u32) -> i64 {
    let lsb = 1u64 << (2 * (MAX_LEVEL - level));
    let raw = id as u64;
    // Keep the bits above the ancestor's marker, then set the marker.
    ((raw & !((lsb << 1) - 1)) | lsb) as i64
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

    #[test]
    fn ancestors_are_cells_of_coarser_levels() {
        let leaf = cell_id(12.5, -33.0, 14);
        for level in 0..14 {
            assert_eq!(ancestor(leaf, level), cell_id(12.5, -33.0, level));
        }
    }

    fn covered(ranges: &[(i64, i64)], id: i64) -> bool {
        ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&id))
    }

    #[test]
    fn a_covering_finds_every_shape_meeting_the_box_and_skips_far_ones() {
        let rect = geo::Rect::new(geo::coord! {x: -74.0, y: 40.7}, geo::coord! {x: -73.95, y: 40.8});
        let ranges = covering_ranges(Some(rect));
        assert!(ranges.len() < 400, "{}", ranges.len());
        let inside = |x: f64, y: f64| enclosing_cell(&Geometry::Point(point!(x: x, y: y)));
        assert!(covered(&ranges, inside(-73.97, 40.77)));
        assert!(covered(&ranges, inside(-74.0, 40.7)), "corner");
        assert!(covered(&ranges, inside(-73.95, 40.8)), "corner");
        assert!(!covered(&ranges, inside(2.35, 48.85)));
        assert!(!covered(&ranges, inside(-73.90, 40.77)));
        // A big shape stored at a coarse level is found through the ancestors.
        let big = enclosing_cell(&Geometry::Polygon(polygon![(x: -80.0, y: 35.0), (x: -70.0, y: 35.0), (x: -70.0, y: 45.0)]));
        assert!(covered(&ranges, big));
        assert_eq!(covering_ranges(None), vec![(i64::MIN, i64::MAX)]);
    }
}
